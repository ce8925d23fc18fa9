"""The package version, in a module of its own so that submodules can import it while the
package itself is still being imported."""

__version__ = "0.1.0"
