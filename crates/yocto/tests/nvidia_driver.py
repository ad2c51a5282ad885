"""Runs the NVIDIA driver recipe's own tasks on a stand-in installer, as BitBake expands them.

Usage: python nvidia_driver.py LAYER_DIR WORK_DIR [--missing LIB | --broken-run]

The real installers cannot be downloaded here, so WORK_DIR gets a stand-in with the same
command line and layout: a shell script that, given `--extract-only --target DIR`, unpacks a
tree with LICENSE, kernel-open/, firmware/gsp_*.bin, the tools, and one shared library per name
the recipe lists plus libnvidia-api.so.1 and the OpenSSL 1.1 libnvidia-pkcs11. The libraries are
made by the C compiler with sonames of three kinds (<name>.so.1, libnvidia-nvvm.so.4, and none
for libnvidia-gpucomp), so only reading the files gives the right links.

1. Parses meta-secret's nvidia-legacy recipe (its .bb and nvidia-driver.inc) with BitBake's own
   parser, module.bbclass standing in empty.
2. Runs do_nvidia_extract with bb.build.exec_func, as BitBake would after do_unpack.
3. Runs do_install (the recipe's shell, expanded by BitBake) into D.
4. Checks D against what readelf (not the recipe's objdump) says of each library: every
   library once under libdir with a link named by its DT_SONAME (none when it has none), no
   unversioned .so, no libnvidia-pkcs11 (OpenSSL 1.1), the tools under bindir, and the GSP
   firmware under nonarch_base_libdir/firmware/nvidia/<version>, nothing under libdir/firmware.

With --missing LIB the installer lacks LIB, and step 3 must stop, naming it. With --broken-run
the installer exits 1 without extracting, and step 2 must stop, naming the archive.
Exits 0 when every step passed, 1 when one failed (naming it), 2 on bad usage. Written for
secretvm (crates/yocto/tests/layer.rs runs it).
"""

import argparse
import base64
import io
import logging
import os
import subprocess
import sys
import tarfile

from bitbake_common import Errors, recipe_datastore, stand_in_classes  # noqa: E402  (also makes `bb` importable)

import bb  # noqa: E402
import bb.build  # noqa: E402
import bb.parse  # noqa: E402
import bb.parse.parse_py  # noqa: E402,F401  (registers the .bb/.conf handlers)

RECIPE = "recipes-nvidia/nvidia-driver/nvidia-legacy_550.144.03.bb"
PV = "550.144.03"
ARCHIVE = "NVIDIA-Linux-x86_64-" + PV
# The stand-in libraries whose soname is not <name>.so.1: another number, and none at all.
SONAME = {"libnvidia-nvvm": "libnvidia-nvvm.so.4", "libnvidia-gpucomp": None}


class Failed(Exception):
    pass


def shared_library(path, soname, workdir):
    src = os.path.join(workdir, "lib.c")
    with open(src, "w") as f:
        f.write("int secretvm_stand_in(void) { return 0; }\n")
    flags = ["-Wl,-soname," + soname] if soname else []
    subprocess.run(["cc", "-shared", "-fPIC", "-o", path, src] + flags, check=True)


def installer(tree, libs, missing, broken):
    """Writes the stand-in installer's tree into `tree` and returns the .run script's text."""
    os.makedirs(os.path.join(tree, "kernel-open"))
    os.makedirs(os.path.join(tree, "firmware"))
    with open(os.path.join(tree, "LICENSE"), "w") as f:
        f.write("stand-in licence\n")
    for fw in ("gsp_ga10x.bin", "gsp_tu10x.bin"):
        with open(os.path.join(tree, "firmware", fw), "wb") as f:
            f.write(fw.encode())
    for tool in ("nvidia-smi", "nvidia-debugdump", "nvidia-persistenced", "nvidia-modprobe"):
        path = os.path.join(tree, tool)
        with open(path, "w") as f:
            f.write("#!/bin/sh\nexit 0\n")
        os.chmod(path, 0o755)
    for lib in libs + ["libnvidia-pkcs11"]:
        if lib == missing:
            continue
        soname = SONAME.get(lib, lib + ".so.1")
        shared_library(os.path.join(tree, "%s.so.%s" % (lib, PV)), soname, tree)
    shared_library(os.path.join(tree, "libnvidia-api.so.1"), "libnvidia-api.so.1", tree)
    os.remove(os.path.join(tree, "lib.c"))
    payload = io.BytesIO()
    with tarfile.open(fileobj=payload, mode="w:gz") as tar:
        tar.add(tree, arcname=".")
    body = base64.b64encode(payload.getvalue()).decode()
    if broken:
        return "#!/bin/sh\necho 'stand-in installer: corrupt archive' >&2\nexit 1\n"
    return (
        "#!/bin/sh\n"
        "# stand-in for an NVIDIA .run installer, written by nvidia_driver.py\n"
        "extract= target=\n"
        "while [ $# -gt 0 ]; do\n"
        "    case $1 in\n"
        "        -x | --extract-only) extract=1 ;;\n"
        "        --target) shift; target=$1 ;;\n"
        "        *) echo \"unknown option $1\" >&2; exit 2 ;;\n"
        "    esac\n"
        "    shift\n"
        "done\n"
        "[ -n \"$extract\" ] && [ -n \"$target\" ] || exit 2\n"
        "mkdir -p \"$target\"\n"
        "sed '1,/^__PAYLOAD__$/d' \"$0\" | base64 -d | tar -xzf - -C \"$target\"\n"
        "exit $?\n"
        "__PAYLOAD__\n" + body + "\n"
    )


def readelf_soname(path):
    out = subprocess.run(["readelf", "-d", path], check=True, capture_output=True,
                         text=True).stdout
    for line in out.splitlines():
        if "(SONAME)" in line:
            return line.split("[", 1)[1].rstrip("]").strip()
    return None


def datastore(work, stubs):
    d = recipe_datastore(stubs, work)
    d.setVar("PN", "nvidia-legacy")
    d.setVar("BPN", "nvidia-legacy")
    d.setVar("PV", PV)
    d.setVar("WORKDIR", os.path.join(work, "workdir"))
    d.setVar("T", "${WORKDIR}/temp")
    d.setVar("D", "${WORKDIR}/image")
    d.setVar("PATH", os.environ["PATH"])
    # What poky sets for the secret-vm machines (qemux86-64, core2-64 tune: baselib lib64;
    # usrmerge), given here rather than computed.
    d.setVar("libdir", "/usr/lib64")
    d.setVar("bindir", "/usr/bin")
    d.setVar("nonarch_base_libdir", "/usr/lib")
    d.setVar("OBJDUMP", "objdump")
    return d


def check_image(d, libs):
    image = d.getVar("D")
    libdir = image + d.getVar("libdir")
    names = sorted(os.listdir(libdir))
    want_files = sorted(["%s.so.%s" % (lib, PV) for lib in libs] + ["libnvidia-api.so.1"])
    files = sorted(n for n in names if not os.path.islink(os.path.join(libdir, n)))
    if files != want_files:
        raise Failed("libraries in %s: %s, expected %s" % (libdir, files, want_files))
    links = {n: os.readlink(os.path.join(libdir, n)) for n in names
             if os.path.islink(os.path.join(libdir, n))}
    want_links = {}
    for f in want_files:
        soname = readelf_soname(os.path.join(libdir, f))
        if soname and soname != f:
            want_links[soname] = f
    if links != want_links:
        raise Failed("links in %s: %s, expected (from readelf) %s" % (libdir, links, want_links))
    if any(n.endswith(".so") for n in names):
        raise Failed("an unversioned .so link was installed: %s" % names)
    tools = sorted(os.listdir(image + d.getVar("bindir")))
    if tools != ["nvidia-debugdump", "nvidia-modprobe", "nvidia-persistenced", "nvidia-smi"]:
        raise Failed("tools: %s" % tools)
    fw = os.path.join(image + d.getVar("nonarch_base_libdir"), "firmware", "nvidia", PV)
    if sorted(os.listdir(fw)) != ["gsp_ga10x.bin", "gsp_tu10x.bin"]:
        raise Failed("firmware in %s: %s" % (fw, os.listdir(fw)))
    if os.path.exists(os.path.join(libdir, "firmware")):
        raise Failed("firmware was installed under libdir, where the kernel does not look")
    return len(want_files), want_links


def main(argv):
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("layer")
    cli.add_argument("work")
    mode = cli.add_mutually_exclusive_group()
    mode.add_argument("--missing", metavar="LIB")
    mode.add_argument("--broken-run", action="store_true")
    args = cli.parse_args(argv[1:])  # exits 2 on bad usage
    layer, work = os.path.abspath(args.layer), os.path.abspath(args.work)
    missing, broken = args.missing, args.broken_run
    errors = Errors()
    logging.getLogger("BitBake").addHandler(errors)
    stubs = stand_in_classes(work, {"module": "# stand-in written by nvidia_driver.py\n"
                                              "do_install() {\n    :\n}\n"})
    d = datastore(work, stubs)
    bb.parse.init_parser(d)
    step = "1 parse"
    try:
        bb.parse.handle(os.path.join(layer, RECIPE), d, include=True)
        libs = d.getVar("NVIDIA_LIBS").split()
        if d.getVar("NVIDIA_ARCHIVE") != ARCHIVE:
            raise Failed("NVIDIA_ARCHIVE is %s" % d.getVar("NVIDIA_ARCHIVE"))
        if errors.messages:
            raise Failed("; ".join(errors.messages))
        print("step 1: parsed %s: %d libraries listed" % (RECIPE, len(libs)))

        step = "2 do_nvidia_extract"
        workdir = d.getVar("WORKDIR")
        os.makedirs(d.getVar("T"), exist_ok=True)
        run = os.path.join(workdir, ARCHIVE + ".run")
        with open(run, "w") as f:
            f.write(installer(os.path.join(work, "tree"), libs, missing, broken))
        # As BitBake's unpacker leaves a downloaded file: a copy, not executable.
        os.chmod(run, 0o644)
        bb.build.exec_func("do_nvidia_extract", d)
        if errors.messages:
            raise Failed("; ".join(errors.messages))
        print("step 2: extracted %s.run into %s" % (ARCHIVE, d.getVar("NVIDIA_SRC")))

        step = "3 do_install"
        body = d.getVar("do_install")
        script = 'bbfatal() { echo "bbfatal: $*" >&2; exit 1; }\nset -e\n' + body
        out = subprocess.run(["sh", "-c", script], capture_output=True, text=True)
        if out.returncode != 0:
            raise Failed("do_install exited %d: %s" % (out.returncode, out.stderr.strip()))
        print("step 3: do_install wrote %s" % d.getVar("D"))

        step = "4 the image"
        count, links = check_image(d, libs)
        print("step 4: %d libraries, soname links %s, tools and GSP firmware where expected"
              % (count, ", ".join("%s -> %s" % kv for kv in sorted(links.items()))))
    except Exception as e:  # noqa: BLE001  (bb raises many types; each names the step)
        # bb.fatal logs its message and raises an exception without one.
        logged = " | ".join(errors.messages)
        print("FAILED at step %s: %s: %s %s" % (step, type(e).__name__, e, logged))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
