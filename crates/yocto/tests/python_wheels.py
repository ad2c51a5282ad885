"""Runs meta-secret's wheel recipes (classes/secret-vm-wheel.bbclass) as BitBake would, then
checks what they install against the library versions the image ships.

Usage: python python_wheels.py LAYER_DIR WORK_DIR TARGET_PYTHON LAYER_PYTHON_LIST WHEEL_DIR
                               [--drop-rdepend RECIPE:DEP]

TARGET_PYTHON is a python whose environment holds exactly the Python libraries of the pinned
layers (LAYER_PYTHON_LIST, `<recipe> <distribution>==<version>` lines; `cargo xtask deps` makes
it); WHEEL_DIR holds the wheels the recipes name, as downloaded from their URLs (`cargo xtask
deps` fills it), so nothing here reaches the network; `faketime` must be on PATH.

1. Parses each wheel recipe of recipes-nvidia/python with BitBake's own parser (the class's
   poky base class standing in empty).
2. Has BitBake's fetcher take each SRC_URI from WHEEL_DIR through PREMIRRORS with
   BB_NO_NETWORK = "1", checking the recipe's sha256, and unpack it; runs the class's secret_vm_wheel_extract as BitBake would after do_unpack.
3. Checks every LIC_FILES_CHKSUM entry as oe-core's license check does (the md5 of the file, or
   of lines beginline..endline).
4. Runs do_install (the recipe's shell, expanded by BitBake) into D, with `nativepython3` being
   TARGET_PYTHON, and requires D to hold the wheel's .dist-info.
5. Runs python_wheels_check.py with TARGET_PYTHON under faketime (see there): every module
   imports; each third-party package a recipe's code imports is in its RDEPENDS; NVIDIA's
   signed reference-value samples verify and a tampered one does not.

--drop-rdepend RECIPE:DEP removes DEP from RECIPE's RDEPENDS before step 5, which must then
fail, naming it. Exits 0 when every step passed, 1 when one failed (naming it), 2 on bad usage.
Written for secretvm (crates/yocto/tests/layer.rs runs it).
"""

import argparse
import hashlib
import json
import logging
import os
import re
import subprocess
import sys

from bitbake_common import Errors, recipe_datastore, stand_in_classes  # noqa: E402  (also makes `bb` importable)

import bb  # noqa: E402
import bb.build  # noqa: E402
import bb.data  # noqa: E402
import bb.fetch2  # noqa: E402
import bb.parse  # noqa: E402
import bb.parse.parse_py  # noqa: E402,F401  (registers the .bb/.conf handlers)

RECIPES = [
    "recipes-nvidia/python/python3-nvidia-ml-py_12.570.86.bb",
    "recipes-nvidia/python/python3-signxml_3.2.2.bb",
    "recipes-nvidia/python/python3-nv-local-gpu-verifier_2.3.0.bb",
    "recipes-nvidia/python/python3-nv-attestation-sdk_2.3.0.bb",
]
# The time NVIDIA's RIM check runs at: the sample reference values' signing certificates were
# valid then (the leaf from 2023-06-23 to 2025-06-22); the check uses the clock.
RIM_TIME = "2024-06-01 00:00:00"


class Failed(Exception):
    pass


def datastore(layer, work, stubs, recipe, mirror):
    pn, pv = os.path.basename(recipe)[: -len(".bb")].split("_")
    d = recipe_datastore("%s:%s" % (layer, stubs), work)
    d.setVar("FILE", os.path.join(layer, recipe))
    d.setVar("PN", pn)
    d.setVar("BPN", pn)
    d.setVar("PV", pv)
    d.setVar("OVERRIDES", "class-target")
    d.setVar("WORKDIR", os.path.join(work, pn, "workdir"))
    d.setVar("T", "${WORKDIR}/temp")
    d.setVar("D", "${WORKDIR}/image")
    d.setVar("DL_DIR", os.path.join(work, "downloads"))
    d.setVar("FILESPATH", "")
    d.setVar("PATH", os.environ["PATH"])
    d.setVar("USRBINPATH", "/usr/bin")
    d.setVar("BB_NO_NETWORK", "1")
    d.setVar("BB_FETCH_PREMIRRORONLY", "1")
    d.setVar("PREMIRRORS", "https?://.*/.* file://%s/" % mirror)
    d.setVar("MIRRORS", "")
    d.setVar("BB_STRICT_CHECKSUM", "1")
    return d


def license_md5(path, begin, end):
    """The md5 oe-core's license check computes: of the file, or of lines begin..end."""
    if not begin and not end:
        with open(path, "rb") as f:
            return hashlib.md5(f.read()).hexdigest()
    m = hashlib.md5()
    with open(path, "rb") as f:
        for n, line in enumerate(f, start=1):
            if n >= begin and (not end or n <= end):
                m.update(line)
            elif end and n > end:
                break
    return m.hexdigest()


def check_licenses(d):
    s = d.getVar("S")
    entries = d.getVar("LIC_FILES_CHKSUM").split()
    for entry in entries:
        _, _, path, _, _, parm = bb.fetch2.decodeurl(entry)
        begin, end = int(parm.get("beginline", 0)), int(parm.get("endline", 0))
        got = license_md5(os.path.join(s, path.lstrip("/")), begin, end)
        if got != parm.get("md5"):
            raise Failed("%s: LIC_FILES_CHKSUM %s has md5 %s, the file gives %s"
                         % (d.getVar("PN"), path, parm.get("md5"), got))
    return len(entries)


def run_recipe(layer, work, stubs, recipe, shim, mirror, errors):
    """Steps 1-4 for one recipe; returns what the check needs to know of it."""
    d = datastore(layer, work, stubs, recipe, mirror)
    bb.parse.init_parser(d)
    bb.parse.handle(os.path.join(layer, recipe), d, include=True)
    bb.data.expandKeys(d)  # RDEPENDS:${PN}, as BitBake's finalize does
    pn = d.getVar("PN")
    url = d.getVar("SECRET_VM_WHEEL_URL")
    wheel = d.getVar("SECRET_VM_WHEEL")
    if errors.messages:
        raise Failed("; ".join(errors.messages))
    print("step 1: parsed %s: %s" % (recipe, wheel))

    if not os.path.isfile(os.path.join(mirror, os.path.basename(url))):
        raise Failed("%s is not in %s: run `cargo xtask deps`" % (os.path.basename(url), mirror))
    fetcher = bb.fetch2.Fetch(d.getVar("SRC_URI").split(), d)
    fetcher.download()
    workdir = d.getVar("WORKDIR")
    os.makedirs(d.getVar("T"), exist_ok=True)
    fetcher.unpack(workdir)
    bb.build.exec_func("secret_vm_wheel_extract", d)
    if errors.messages:
        raise Failed("; ".join(errors.messages))
    print("step 2: %s: bitbake %s fetched %s (sha256 %s verified) and extracted it into S"
          % (pn, bb.__version__, wheel, d.getVarFlag("SRC_URI", "sha256sum")))

    n = check_licenses(d)
    print("step 3: %s: %d LIC_FILES_CHKSUM entries match" % (pn, n))

    image = d.getVar("D")
    body = d.getVar("do_install")
    env = dict(os.environ, PATH=shim + os.pathsep + os.environ["PATH"])
    subprocess.run(["sh", "-e", "-c", body], check=True, env=env, cwd=workdir)
    name_version = "-".join(wheel.split("-")[:2])
    dist_infos = [os.path.join(root, name) for root, dirs, _ in os.walk(image)
                  for name in dirs if name == name_version + ".dist-info"]
    if len(dist_infos) != 1:
        raise Failed("%s: do_install left %d %s.dist-info in D" % (pn, len(dist_infos), name_version))
    site = os.path.dirname(dist_infos[0])
    entry_points = os.path.join(dist_infos[0], "entry_points.txt")
    if os.path.exists(entry_points):
        with open(entry_points) as f:
            sections = re.findall(r"(?m)^\[(\w+)\]", f.read())
        if {"console_scripts", "gui_scripts"} & set(sections):
            raise Failed("%s: the wheel has console scripts, whose shebang this test does not "
                         "check (poky's installer --interpreter)" % pn)
    print("step 4: %s: do_install put %s into %s" % (pn, name_version, os.path.relpath(site, image)))
    rdepends = (d.getVar("RDEPENDS:" + pn) or "").split()
    return {"recipe": pn, "site": site, "dist_info": dist_infos[0], "rdepends": rdepends}


def main(argv):
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("layer", "work", "target_python", "layer_python_list", "wheel_dir"):
        cli.add_argument(name)
    cli.add_argument("--drop-rdepend", metavar="RECIPE:DEP")
    args = cli.parse_args(argv[1:])  # exits 2 on bad usage
    layer, work = os.path.abspath(args.layer), os.path.abspath(args.work)
    errors = Errors()
    logging.getLogger("BitBake").addHandler(errors)
    stubs = stand_in_classes(work, {"setuptools3-base": "# stand-in written by python_wheels.py\n"})
    # do_install's `nativepython3` is the target python here (poky's is the native one, told the
    # target's paths by python3targetconfig). poky's installer 0.7.0 carries a patch that adds
    # --interpreter (the shebang of the console scripts it writes); PyPI's has no such option, so
    # the wrapper drops it, and step 4 requires that no wheel has console scripts.
    shim = os.path.join(work, "shim")
    os.makedirs(shim, exist_ok=True)
    wrapper = os.path.join(shim, "nativepython3")
    with open(wrapper, "w") as f:
        f.write("#!%s\n" % os.path.abspath(args.target_python)
                + "import os, sys\n"
                + "a = sys.argv[1:]\n"
                + "if '--interpreter' in a:\n"
                + "    i = a.index('--interpreter'); del a[i:i + 2]\n"
                + "os.execv(sys.executable, [sys.executable] + a)\n")
    os.chmod(wrapper, 0o755)
    step = "1 parse"
    try:
        recipes = []
        for recipe in RECIPES:
            step = "1-4 of %s" % recipe
            recipes.append(run_recipe(layer, work, stubs, recipe, shim,
                                      os.path.abspath(args.wheel_dir), errors))

        step = "5 check with the layer's libraries"
        if args.drop_rdepend:
            pn, dep = args.drop_rdepend.split(":")
            [r] = [r for r in recipes if r["recipe"] == pn]
            r["rdepends"].remove(dep)
        layer_recipes = {}
        with open(args.layer_python_list) as f:
            for line in f:
                if line.strip() and not line.startswith("#"):
                    recipe, pin = line.split()
                    layer_recipes[recipe] = pin
        spec = os.path.join(work, "check.json")
        with open(spec, "w") as f:
            json.dump({"recipes": recipes, "layer_recipes": layer_recipes}, f, indent=1)
        checker = os.path.join(os.path.dirname(os.path.abspath(__file__)), "python_wheels_check.py")
        out = subprocess.run(["faketime", RIM_TIME, args.target_python, "-W", "ignore", checker,
                              spec], capture_output=True, text=True, cwd=work)
        sys.stdout.write(out.stdout)
        sys.stdout.write(re.sub(r"(?m)^", "checker stderr: ", out.stderr) if out.stderr else "")
        if out.returncode != 0:
            raise Failed("python_wheels_check.py exited %d" % out.returncode)
    except Exception as e:  # noqa: BLE001  (bb raises many types; each names the step)
        print("FAILED at step %s: %s: %s" % (step, type(e).__name__, e))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
