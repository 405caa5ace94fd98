"""AI Engineering Lab reference package.

Small, typed modules the notebooks import (``reference.llm``, ``reference.embeddings``,
``reference.serve`` ...). Importing the package switches every library it uses to
offline mode first (see :mod:`reference.offline`).
"""

from reference.offline import configure_offline

configure_offline()

__version__ = "0.1.0"
