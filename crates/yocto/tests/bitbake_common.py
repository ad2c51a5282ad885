"""What secretvm's BitBake test scripts share.

Importing it makes the `bb` package of PyPI `bitbake-setup` importable: that wheel ships `bb`
without `hashserv` and `prserv`, which bb.siggen imports at import time but neither script
calls, so empty modules stand in for them. `Errors` collects what BitBake logs at ERROR level,
which it sometimes does instead of raising.
"""

import logging
import sys
import types

for _name in ("hashserv", "hashserv.client", "prserv", "prserv.serv"):
    sys.modules.setdefault(_name, types.ModuleType(_name))


class Errors(logging.Handler):
    """Collects the messages BitBake logs at ERROR level or above."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def stand_in_classes(work, classes):
    """Writes the poky classes a script's recipe inherits but that are not here (no poky
    checkout) under WORK/stubs/classes: `classes` maps each name to its text. Returns the stubs
    directory, for BBPATH."""
    import os

    stubs = os.path.join(work, "stubs")
    os.makedirs(os.path.join(stubs, "classes"), exist_ok=True)
    for name, text in classes.items():
        with open(os.path.join(stubs, "classes", name + ".bbclass"), "w") as f:
            f.write(text)
    return stubs


def recipe_datastore(bbpath, topdir):
    """A BitBake datastore as a recipe's parse starts: its search path, its top directory, the
    default multiconfig. The scripts set the rest of what their recipe reads."""
    import bb.data

    d = bb.data.init()
    d.setVar("BBPATH", bbpath)
    d.setVar("TOPDIR", topdir)
    d.setVar("__bbclasstype", "recipe")
    d.setVar("BB_CURRENT_MC", "")
    return d
