"""Evaluates a generated bitbake build configuration with BitBake's own configuration code.

Usage: python bitbake_conf.py BUILD_DIR [--recipe FILE]... VAR...

BUILD_DIR holds conf/bblayers.conf, conf/local.conf, conf/auto.conf, conf/multiconfig/*.conf
and conf/srcrev-lock.inc as `secretvm build` writes them; the layers BBLAYERS names must exist
(the caller provides stand-ins for the poky layers, whose conf/bitbake.conf includes
site.conf, auto.conf, local.conf, the multiconfig, the machine and the distro in poky's order).
BitBake's CookerDataBuilder then does what `bitbake` does before parsing recipes: bblayers.conf,
every layer.conf, bitbake.conf, the inherited classes, and the same again for every
multiconfig in BBMULTICONFIG, with BB_CURRENT_MC set.

Prints one JSON object: {"BBMULTICONFIG": ..., "<mc>": {VAR: expanded value, ...}, ...} (a
VAR written `NAME[FLAG]` gives the expanded flag) with
the multiconfigs in BBMULTICONFIG order ("" is the default configuration). Each `--recipe`
is then parsed in every multiconfig as BitBake parses a recipe (its anonymous functions and
the configuration's event handlers run), and each multiconfig's object gets "__skipped__":
{FILE's base name: the reason BitBake skipped it, or null}. Exits 1 with the error on stderr
when BitBake rejects the configuration or a recipe. Written for secretvm
(crates/yocto/tests/bitbake_conf.rs runs it).
"""

import json
import logging
import os
import sys

from bitbake_common import Errors  # noqa: E402  (also makes `bb` importable)

import bb  # noqa: E402
import bb.cookerdata  # noqa: E402
import bb.data  # noqa: E402
import bb.parse  # noqa: E402


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


def skipped(recipe, d):
    """Parses `recipe` on a copy of the configuration `d`; the reason it was skipped, or None."""
    datastores = bb.parse.handle(recipe, bb.data.createCopy(d))
    return datastores[""].getVar("__SKIPPED")


def main(argv):
    if len(argv) < 2 or not os.path.isdir(os.path.join(argv[1], "conf")):
        print("usage: bitbake_conf.py BUILD_DIR [--recipe FILE]... VAR...", file=sys.stderr)
        return 2
    build, names, recipes = os.path.abspath(argv[1]), [], []
    args = iter(argv[2:])
    for arg in args:
        if arg == "--recipe":
            recipe = next(args, None)
            if recipe is None:
                print("bitbake_conf.py: --recipe needs a file", file=sys.stderr)
                return 2
            recipes.append(os.path.abspath(recipe))
        else:
            names.append(arg)
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
    if recipes:
        bb.parse.init_parser(base)
    for mc in [""] + order:
        d = builder.mcdata[mc]
        out[mc] = {name: value(d, name) for name in names}
        if recipes:
            try:
                out[mc]["__skipped__"] = {os.path.basename(r): skipped(r, d) for r in recipes}
            except BaseException as e:
                print("bitbake could not parse a recipe in multiconfig %r: %s: %s | %s"
                      % (mc, type(e).__name__, e, " | ".join(errors.messages)), file=sys.stderr)
                return 1
            if errors.messages:
                print("bitbake logged errors: %s" % " | ".join(errors.messages), file=sys.stderr)
                return 1
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
