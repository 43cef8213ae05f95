"""The project's exception hierarchy.

Every error the project raises on bad input derives from :class:`HTSError`, so callers (and the CLI)
can catch one type and print a message that says what was wrong and what to do.
"""

from __future__ import annotations


class HTSError(Exception):
    """Base class of every error raised by the project on bad input or bad state."""


class ConfigError(HTSError):
    """A campaign or command configuration is invalid (unknown key, bad range, unknown host...)."""


class InputDataError(HTSError):
    """A dataset, structure, CIF or other input file cannot be used as it is."""


class DefectError(InputDataError):
    """A defect configuration violates the host's rules (site out of range, forbidden species...)."""


class GenerationError(HTSError):
    """Text generation or parsing of a generated crystal failed."""


class ModelError(HTSError):
    """A model or adapter directory is missing, incomplete or does not match the data."""


class OracleError(HTSError):
    """The physics oracle could not be run (missing package, bad structure)."""


class StoreError(HTSError):
    """The results store cannot be opened or written."""


class ClusterError(HTSError):
    """The Dask cluster was lost or failed while work was in flight (scheduler gone, workers lost)."""
