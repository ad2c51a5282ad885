"""Evaluates a generated bitbake build configuration with BitBake's own configuration code.

Usage: python bitbake_conf.py BUILD_DIR VAR...

BUILD_DIR holds conf/bblayers.conf, conf/local.conf, conf/auto.conf, conf/multiconfig/*.conf
and conf/srcrev-lock.inc as `secretvm build` writes them; the layers BBLAYERS names must exist
(the caller provides stand-ins for the poky layers, whose conf/bitbake.conf includes
site.conf, auto.conf, local.conf, the multiconfig, the machine and the distro in poky's order).
BitBake's CookerDataBuilder then does what `bitbake` does before parsing recipes: bblayers.conf,
every layer.conf, bitbake.conf, the inherited classes, and the same again for every
multiconfig in BBMULTICONFIG, with BB_CURRENT_MC set.

Prints one JSON object: {"BBMULTICONFIG": ..., "<mc>": {VAR: expanded value, ...}, ...} (a
VAR written `NAME[FLAG]` gives the expanded flag) with
the multiconfigs in BBMULTICONFIG order ("" is the default configuration). Exits 1 with the
error on stderr when BitBake rejects the configuration. Written for secretvm
(crates/yocto/tests/bitbake_conf.rs runs it).
"""

import json
import logging
import os
import sys

from bitbake_common import Errors  # noqa: E402  (also makes `bb` importable)

import bb  # noqa: E402
import bb.cookerdata  # noqa: E402


class Config:
    """The few CookerConfiguration fields CookerDataBuilder reads."""

    prefile = []
    postfile = []
    tracking = False
    skip_fragments = True

    def __init__(self):
        # As `bitbake` is run by the builder: a clean environment.
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}


def value(d, name):
    """The expanded value of the variable `name`, or of the flag `F` for `name` = `VAR[F]`."""
    if name.endswith("]") and "[" in name:
        var, flag = name[:-1].split("[", 1)
        return d.getVarFlag(var, flag)
    return d.getVar(name)


def main(argv):
    if len(argv) < 2 or not os.path.isdir(os.path.join(argv[1], "conf")):
        print("usage: bitbake_conf.py BUILD_DIR VAR...", file=sys.stderr)
        return 2
    build, names = os.path.abspath(argv[1]), argv[2:]
    errors = Errors()
    logging.getLogger("BitBake").addHandler(errors)
    os.chdir(build)
    try:
        builder = bb.cookerdata.CookerDataBuilder(Config())
        builder.parseBaseConfiguration()
    except BaseException as e:  # bb.fatal raises BBHandledException after logging
        print("bitbake rejected the configuration: %s: %s | %s"
              % (type(e).__name__, e, " | ".join(errors.messages)), file=sys.stderr)
        return 1
    if errors.messages:
        print("bitbake logged errors: %s" % " | ".join(errors.messages), file=sys.stderr)
        return 1
    base = builder.mcdata[""]
    order = (base.getVar("BBMULTICONFIG") or "").split()
    out = {"BBMULTICONFIG": base.getVar("BBMULTICONFIG")}
    for mc in [""] + order:
        d = builder.mcdata[mc]
        out[mc] = {name: value(d, name) for name in names}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
