// MathJax's settings for the site (MathJax itself, tex-svg-full.js from npm, is copied into the
// built site by docs/hooks.py: no CDN, no web fonts). The formulas pymdownx.arithmatex marks and
// the tutorial notebook's $...$ are typeset (only that page has dollar signs outside code).
// Loaded twice on the tutorial's page (its own script tag and the site's), so it keeps settings
// already made.
window.MathJax = window.MathJax || {
  tex: {
    inlineMath: [["\\(", "\\)"], ["$", "$"]],
    displayMath: [["\\[", "\\]"], ["$$", "$$"]],
    processEscapes: true,
    processEnvironments: true,
  },
  options: { enableMenu: false },
  svg: { fontCache: "global" },
};
