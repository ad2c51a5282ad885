"""Builds a Rust project offline the way a meta-secret recipe does with secret-vm-cargo-vendor.

Usage: python cargo_vendor.py LAYER_DIR PROJECT_DIR WORK_DIR CRATE_MIRROR [--tamper NAME]

1. Writes the project's crates include from its Cargo.lock, in the form poky's
   cargo-update-recipe-crates class writes it (crate:// URIs, SRC_URI[<name>-<version>.sha256sum]).
2. Downloads every .crate from CRATE_MIRROR (laid out as static.crates.io: crates/NAME/NAME-VERSION.crate)
   into a local directory.
3. Has BitBake's own fetcher (bb.fetch2, crate://) take them from that directory through
   PREMIRRORS with BB_NO_NETWORK = "1", verifying each sha256 from step 1, and unpack them into
   WORK_DIR as a recipe's do_unpack does.
4. Runs the class's secret_vm_cargo_vendor_config, as BitBake expands it, with sh.
5. Runs `cargo build` with the class's EXTRA_CARGO_FLAGS and CARGO_HOME, every proxy pointing at
   a closed port, then runs the program, which must print the sha256 of its argument.

With --tamper NAME the checksum of crate NAME is altered in step 1, and step 3 must refuse it.
Prints what each step did; exits 0 when every step passed, 1 when one failed (naming it), 2 on
bad usage. Written for secretvm (crates/yocto/tests/layer.rs runs it).
"""

import hashlib
import logging
import os
import subprocess
import sys
import tomllib
import urllib.request

from bitbake_common import Errors  # noqa: E402  (also makes `bb` importable)

import bb  # noqa: E402
import bb.data  # noqa: E402
import bb.fetch2  # noqa: E402
import bb.parse  # noqa: E402
import bb.parse.parse_py  # noqa: E402,F401  (registers the .bb/.conf handlers)

CLASS = "classes/secret-vm-cargo-vendor.bbclass"


class Failed(Exception):
    pass


def crates_of(lock_path):
    with open(lock_path, "rb") as f:
        lock = tomllib.load(f)
    return [p for p in lock["package"] if "crates.io" in p.get("source", "")]


def crates_inc(crates, tamper):
    lines = ['SRC_URI += " \\']
    sums = []
    for c in crates:
        lines.append("    crate://crates.io/%s/%s \\" % (c["name"], c["version"]))
        checksum = c["checksum"]
        if c["name"] == tamper:
            checksum = ("0" if checksum[0] != "0" else "1") + checksum[1:]
        sums.append('SRC_URI[%s-%s.sha256sum] = "%s"' % (c["name"], c["version"], checksum))
    lines.append('"')
    return "\n".join(lines + [""] + sums) + "\n"


def download(crates, mirror, into):
    os.makedirs(into, exist_ok=True)
    for c in crates:
        name = "%s-%s.crate" % (c["name"], c["version"])
        path = os.path.join(into, name)
        if not os.path.exists(path):
            url = "%s/crates/%s/%s" % (mirror.rstrip("/"), c["name"], name)
            with urllib.request.urlopen(url, timeout=60) as r, open(path + ".part", "wb") as f:
                f.write(r.read())
            os.rename(path + ".part", path)


def datastore(layer, work, stubs):
    d = bb.data.init()
    d.setVar("BBPATH", "%s:%s" % (layer, stubs))
    d.setVar("TOPDIR", work)
    d.setVar("__bbclasstype", "recipe")
    d.setVar("BB_CURRENT_MC", "")
    d.setVar("PN", "vendor-probe")
    d.setVar("BPN", "vendor-probe")
    d.setVar("PV", "0.1.0")
    d.setVar("BP", "${BPN}-${PV}")
    d.setVar("WORKDIR", os.path.join(work, "workdir"))
    d.setVar("S", "${WORKDIR}/src")
    d.setVar("DL_DIR", os.path.join(work, "downloads"))
    d.setVar("FILESPATH", "")
    d.setVar("PATH", os.environ["PATH"])
    d.setVar("BB_NO_NETWORK", "1")
    d.setVar("BB_FETCH_PREMIRRORONLY", "1")
    mirror_dir = os.path.join(work, "mirror")
    d.setVar("PREMIRRORS", "crate://.*/.* file://%s/ https?://.*/.* file://%s/" % (mirror_dir, mirror_dir))
    d.setVar("MIRRORS", "")
    d.setVar("BB_STRICT_CHECKSUM", "1")
    # What meta-rust-bin's cargo_bin sets before our class appends to it.
    d.setVar("CARGO_HOME", "${WORKDIR}/cargo_home")
    d.setVar("EXTRA_CARGO_FLAGS", "")
    return d


def main(argv):
    args = argv[1:]
    tamper = None
    if len(args) == 6 and args[4] == "--tamper":
        tamper = args[5]
        args = args[:4]
    if len(args) != 4:
        print(__doc__.splitlines()[2], file=sys.stderr)
        return 2
    layer, project, work = (os.path.abspath(a) for a in args[:3])
    mirror = args[3]
    errors = Errors()
    logging.getLogger("BitBake").addHandler(errors)
    # BitBake reports a checksum mismatch on a mirror as a warning, then tries the next source.
    shown = logging.StreamHandler(sys.stdout)
    shown.setLevel(logging.WARNING)
    shown.setFormatter(logging.Formatter("bitbake %(levelname)s: %(message)s"))
    logging.getLogger("BitBake").addHandler(shown)
    stubs = os.path.join(work, "stubs")
    os.makedirs(os.path.join(stubs, "classes"), exist_ok=True)
    # poky's class is not here (no poky checkout); ours inherits it only for update_crates.
    for name in ("base", "cargo-update-recipe-crates"):
        with open(os.path.join(stubs, "classes", name + ".bbclass"), "w") as f:
            f.write("# stand-in written by cargo_vendor.py\n")
    d = datastore(layer, work, stubs)
    bb.parse.init_parser(d)
    step = "1 crates include"
    try:
        crates = crates_of(os.path.join(project, "Cargo.lock"))
        inc = os.path.join(work, "vendor-probe-crates.inc")
        with open(inc, "w") as f:
            f.write(crates_inc(crates, tamper))
        print("step 1: %d crates from Cargo.lock" % len(crates))

        step = "2 download from %s" % mirror
        download(crates, mirror, os.path.join(work, "mirror"))
        print("step 2: downloaded into %s" % os.path.join(work, "mirror"))

        step = "3 bitbake fetch and unpack"
        bb.parse.handle(inc, d, include=True)
        bb.parse.handle(os.path.join(layer, CLASS), d, include=True)
        urls = d.getVar("SRC_URI").split()
        fetcher = bb.fetch2.Fetch(urls, d)
        fetcher.download()
        workdir = d.getVar("WORKDIR")
        os.makedirs(workdir, exist_ok=True)
        fetcher.unpack(workdir)
        vendor = d.getVar("SECRET_VM_CARGO_VENDOR_DIR")
        got = sorted(os.listdir(vendor))
        want = sorted("%s-%s" % (c["name"], c["version"]) for c in crates)
        if got != want:
            raise Failed("unpacked %s, expected %s" % (got, want))
        if errors.messages:
            raise Failed("; ".join(errors.messages))
        print("step 3: bitbake %s fetched %d crate:// URLs, checksums verified, unpacked into %s"
              % (bb.__version__, len(urls), vendor))

        step = "4 secret_vm_cargo_vendor_config"
        body = d.getVar("secret_vm_cargo_vendor_config")
        script = 'bbfatal() { echo "bbfatal: $*" >&2; exit 1; }\nset -e\n' + body
        subprocess.run(["sh", "-c", script], check=True)
        cargo_home = d.getVar("CARGO_HOME")
        print("step 4: wrote %s/config.toml" % cargo_home)

        step = "5 cargo build"
        flags = d.getVar("EXTRA_CARGO_FLAGS").split()
        env = dict(os.environ, CARGO_HOME=cargo_home)
        closed = "http://127.0.0.1:9"
        for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY",
                    "CARGO_HTTP_PROXY"):
            env[var] = closed
        target = os.path.join(work, "target")
        cmd = ["cargo", "build", "--quiet", "--manifest-path",
               os.path.join(project, "Cargo.toml"), "--target-dir", target] + flags
        subprocess.run(cmd, check=True, env=env, cwd=project)
        out = subprocess.run([os.path.join(target, "debug", "vendor-probe"), "secret-vm"],
                             check=True, capture_output=True, text=True).stdout.strip()
        expected = hashlib.sha256(b"secret-vm").hexdigest()
        if out != expected:
            raise Failed("the program printed %r, expected %r" % (out, expected))
        print("step 5: cargo build %s succeeded offline; the program printed %s"
              % (" ".join(flags), out))
    except Exception as e:  # noqa: BLE001  (bb raises many types; each names the step)
        print("FAILED at step %s: %s: %s" % (step, type(e).__name__, e))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
