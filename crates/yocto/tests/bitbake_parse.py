"""Parses every metadata file of a layer with BitBake's own parser (the `bb` package).

Usage: python bitbake_parse.py LAYER_DIR

The `bb` package comes from PyPI `bitbake-setup` (no poky checkout needed). The classes and
files our layer inherits or requires from other layers (core-image, kernel, deploy,
conf/machine/qemux86-64.conf, ...) are replaced by empty stand-ins written to a temporary
directory, so what is checked is the syntax and evaluation of OUR files: unbalanced quotes,
unclosed functions, bad override syntax, python that does not compile, a require of a file
that does not exist in the layer.

Prints one line per file ("ok" or the error) and exits 1 if any file fails, 2 on bad usage.
Written for secretvm (crates/yocto/tests/bitbake_parse.rs runs it).
"""

import logging
import os
import re
import shutil
import sys
import tempfile

from bitbake_common import Errors, recipe_datastore  # noqa: E402  (also makes `bb` importable)

import bb  # noqa: E402
import bb.data  # noqa: E402
import bb.parse  # noqa: E402
import bb.parse.parse_py  # noqa: E402,F401  (registers the .bb/.conf handlers)

METADATA = (".bb", ".bbappend", ".bbclass", ".inc", ".conf")
INHERIT = re.compile(r"^\s*inherit(?:_defer)?\s+(.+)$")
REQUIRE = re.compile(r"^\s*(require|include)\s+(\S+)\s*$")


def layer_files(layer):
    out = []
    for root, dirs, files in os.walk(layer):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.endswith(METADATA):
                out.append(os.path.join(root, name))
    return out


def write_stubs(layer, files, stubs):
    """Empty stand-ins for every class and required file that is not in the layer."""
    for path in files:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
        for line in lines:
            m = INHERIT.match(line)
            if m:
                for cls in m.group(1).split():
                    if "${" in cls or cls.startswith("#"):
                        break
                    ours = [os.path.join(layer, d, cls + ".bbclass")
                            for d in ("classes", "classes-recipe", "classes-global")]
                    if not any(os.path.exists(p) for p in ours):
                        touch(os.path.join(stubs, "classes", cls + ".bbclass"))
            m = REQUIRE.match(line)
            if m and "${" not in m.group(2):
                target = m.group(2)
                beside = os.path.join(os.path.dirname(path), target)
                if os.path.exists(beside) or os.path.exists(os.path.join(layer, target)):
                    continue
                # Only files of other layers get a stand-in (a path below a directory the layer
                # does not have, or below conf/); a missing file of our own layer, such as a bare
                # name beside the recipe, stays missing and fails the parse.
                top = target.split("/")[0]
                if "/" not in target or top != "conf" and os.path.isdir(os.path.join(layer, top)):
                    continue
                touch(os.path.join(stubs, target))
    # bitbake inherits base.bbclass into every recipe.
    touch(os.path.join(stubs, "classes", "base.bbclass"))


def touch(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if not os.path.exists(path):
        with open(path, "w", encoding="utf-8") as f:
            f.write("# stand-in written by bitbake_parse.py\n")


def base_data(layer, stubs):
    d = recipe_datastore("%s:%s" % (layer, stubs), stubs)
    d.setVar("LAYERDIR", layer)
    # PN and BPN as poky's bitbake.conf derives them from the recipe's file name (simplified:
    # no -native or multilib suffixes here), for requires such as ${BPN}-crates.inc.
    d.setVar("PN", "${@bb.parse.vars_from_file(d.getVar('FILE', False), d)[0] or 'defaultpkgname'}")
    d.setVar("BPN", "${PN}")
    return d


def parse_one(path, layer, stubs):
    d = bb.data.createCopy(base_data(layer, stubs))
    if path.endswith(".conf"):
        # Configuration files as BitBake reads them, part of the base configuration (which is
        # where it accepts addpylib).
        bb.parse.handle(path, d, include=True, baseconfig=True)
    elif path.endswith((".inc", ".bbclass")):
        bb.parse.handle(path, d, include=True)
    elif path.endswith(".bbappend"):
        # Apply it to an empty recipe of the name it appends to ("%" matches any version).
        name = os.path.basename(path)[: -len(".bbappend")].replace("%", "stub")
        recipe = os.path.join(stubs, "recipes", name + ".bb")
        touch(recipe)
        d.setVar("__BBAPPEND", path)
        bb.parse.handle(recipe, d, include=False)
    else:
        bb.parse.handle(path, d, include=False)


def main(argv):
    if len(argv) != 2 or not os.path.isdir(argv[1]):
        print("usage: bitbake_parse.py LAYER_DIR", file=sys.stderr)
        return 2
    layer = os.path.abspath(argv[1])
    files = layer_files(layer)
    if not files:
        print("%s: no metadata files" % layer, file=sys.stderr)
        return 1
    errors = Errors()
    logging.getLogger("BitBake").addHandler(errors)
    stubs = tempfile.mkdtemp(prefix="bitbake-parse-")
    # The "noop" signature generator: finalising a recipe computes no task hashes.
    bb.parse.init_parser(base_data(layer, stubs))
    failed = 0
    try:
        write_stubs(layer, files, stubs)
        for path in files:
            rel = os.path.relpath(path, layer)
            errors.messages.clear()
            try:
                parse_one(path, layer, stubs)
            except Exception as e:  # bitbake raises ParseError, SyntaxError, FileNotFoundError, ...
                errors.messages.append("%s: %s" % (type(e).__name__, e))
            if errors.messages:
                failed += 1
                for message in errors.messages:
                    print("%s: FAILED: %s" % (rel, message.strip().replace("\n", " | ")))
            else:
                print("%s: ok" % rel)
    finally:
        shutil.rmtree(stubs, ignore_errors=True)
    print("bitbake %s parsed %d files, %d failed" % (bb.__version__, len(files), failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
