"""Pictures and pages: image arrays and their matplotlib writers (``figures``), the generic
self-contained HTML page writer (``html``: tables, figures and sections, images embedded) and the
offline explorer page (``explore/``). Import them from their modules; this package imports
nothing, so the command line loads the explorer only when it is asked for."""
