"""Builds a Rust project offline the way a meta-secret recipe does with secret-vm-cargo-vendor.

Usage: python cargo_vendor.py LAYER_DIR PROJECT_DIR WORK_DIR CRATE_MIRROR [--tamper NAME | --omit-git | --wrong-checkout | --omit-crates]
       python cargo_vendor.py LAYER_DIR RECIPE WORK_DIR CRATE_MIRROR --recipe

1. Writes the project's crates include from its Cargo.lock, in the form poky's
   cargo-update-recipe-crates class writes it (crate:// URIs, SRC_URI[<name>-<version>.sha256sum]),
   plus what a recipe adds for the git dependency: a git:// SRC_URI entry with its SRCREV and the
   class's SECRET_VM_CARGO_GIT flag. The repository is made from PROJECT_DIR/git-dep with fixed
   names and dates, so its commit is the one the project's Cargo.lock names. It is a workspace of
   two crates, one taking the other by path, that inherit their version, edition and lints.
2. Copies every .crate from CRATE_MIRROR, a local directory of NAME-VERSION.crate files that
   `cargo xtask deps` downloads from static.crates.io (so nothing here reaches the network),
   into the premirror.
3. Has BitBake's own fetcher (bb.fetch2, crate:// and git://) take them, the crates from that
   directory through PREMIRRORS, with BB_NO_NETWORK = "1", verifying each sha256 from step 1,
   and unpack them into WORK_DIR as a recipe's do_unpack does.
4. Runs the class's configure functions as BitBake expands them: secret_vm_cargo_vendor_config
   with sh, secret_vm_cargo_vendor_git with bb.build.exec_func (which vendors the two git crates
   with `cargo vendor`); Cargo.lock must be left as the project has it.
5. Runs `cargo build` with the class's EXTRA_CARGO_FLAGS and CARGO_HOME, every proxy pointing at
   a closed port, then runs the program, which must print "sha256 " and the sha256 of its argument.
6. Runs do_compile as BitBake expands it: the class's prepend, then the part of meta-rust-bin's
   cargo_bin_do_compile that decides what cargo and the cc crate see (a release build with debug
   info, RUSTFLAGS from EXTRA_RUSTFLAGS, HOST_CFLAGS set empty). The git dependency compiles C
   with the cc crate from outside S (its debug info names the directory it was compiled in);
   the binary must have that C code in it and contain the work directory's path nowhere.
7. Does steps 1 to 4 again in another work directory, and the release builds of both (as in
   step 6) must be byte-identical: the git crates' -C metadata, and with it their symbol names,
   must not depend on where they were checked out.

With --tamper NAME the checksum of crate NAME is altered in step 1, and step 3 must refuse it
(steps 6 and 7 run only without these four options).
With --omit-git the SECRET_VM_CARGO_GIT flag is left out, and step 4 must stop, naming the
repository and its crates.
With --wrong-checkout the flag names the directory above the checkout, which is no git checkout,
and step 4 must stop, naming the flag and the commit.
With --omit-crates the crates include has no crate (as when a recipe forgets to require it), and
step 4 must stop, saying so.

With --recipe, RECIPE is a recipe of the layer (a path relative to LAYER_DIR) whose Rust source
is in the layer, secretvm-guest's: BitBake parses the recipe itself, with the crates include it
requires (and stand-ins for poky's base class and meta-rust-bin's cargo_bin); the crates its
SRC_URI names come from CRATE_MIRROR; its fetcher takes the source from the recipe's files
directory and the crates through the premirror, checking each sha256 of the include, and
unpacks them; the include must name exactly the crates.io packages of the unpacked Cargo.lock,
with the same sha256; then steps 4 and 5 run as above, and the program built must extend a
stand-in RTMR file with the zero-padded sha256 it is given. Last, the recipe is fetched and
configured again in another work directory, and the release builds of both (do_compile as in
step 6) must be byte-identical.
Prints what each step did; exits 0 when every step passed, 1 when one failed (naming it), 2 on
bad usage. Written for secretvm (crates/yocto/tests/layer.rs runs it).
"""

import argparse
import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tomllib

from bitbake_common import Errors, recipe_datastore, stand_in_classes  # noqa: E402  (also makes `bb` importable)

import bb  # noqa: E402
import bb.build  # noqa: E402
import bb.fetch2  # noqa: E402
import bb.parse  # noqa: E402
import bb.parse.parse_py  # noqa: E402,F401  (registers the .bb/.conf handlers)

CLASS = "classes/secret-vm-cargo-vendor.bbclass"

# The step running, for the failure message (set by the step functions as they go).
step = ""


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


GIT_DEP = "probe-git-dep"


def git_dep(lock_path):
    """The git package of Cargo.lock: (repository URL, commit)."""
    with open(lock_path, "rb") as f:
        lock = tomllib.load(f)
    [source] = [p["source"] for p in lock["package"] if p["name"] == GIT_DEP]
    url, commit = source[len("git+"):].split("#")
    return url.split("?")[0], commit


def make_git_repo(files, into):
    """A repository of `files` with fixed names and dates; returns its commit."""
    shutil.copytree(files, into)
    env = dict(os.environ, GIT_AUTHOR_NAME="secretvm", GIT_AUTHOR_EMAIL="secretvm@invalid",
               GIT_COMMITTER_NAME="secretvm", GIT_COMMITTER_EMAIL="secretvm@invalid",
               GIT_AUTHOR_DATE="2026-01-01T00:00:00Z", GIT_COMMITTER_DATE="2026-01-01T00:00:00Z",
               GIT_CONFIG_GLOBAL=os.devnull, GIT_CONFIG_NOSYSTEM="1")
    for args in (["init", "-q", "-b", "main"], ["add", "-A"],
                 ["-c", "commit.gpgsign=false", "commit", "-q", "-m", "probe-git-dep 0.1.0"]):
        subprocess.run(["git", "-C", into] + args, check=True, env=env)
    return subprocess.run(["git", "-C", into, "rev-parse", "HEAD"], check=True, env=env,
                          capture_output=True, text=True).stdout.strip()


def git_inc(repo, commit, url, args):
    """What a recipe adds for a git dependency."""
    text = ('SRC_URI += "git://%s;protocol=file;nobranch=1;name=probe;destsuffix=cargo_git/%s"\n'
            'SRCREV_probe = "%s"\n' % (repo, GIT_DEP, commit))
    if not args.omit_git:
        checkout = "cargo_git" if args.wrong_checkout else "cargo_git/" + GIT_DEP
        text += 'SECRET_VM_CARGO_GIT[probe] = "%s %s"\n' % (url, checkout)
    return text


def gather(crates, mirror, into):
    os.makedirs(into, exist_ok=True)
    for c in crates:
        name = "%s-%s.crate" % (c["name"], c["version"])
        source = os.path.join(mirror, name)
        if not os.path.isfile(source):
            raise Failed("%s is not in %s: run `cargo xtask deps`" % (name, mirror))
        shutil.copyfile(source, os.path.join(into, name))


def datastore(layer, work, stubs):
    d = recipe_datastore("%s:%s" % (layer, stubs), work)
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
    d.setVar("CARGO_MANIFEST_PATH", "${S}/Cargo.toml")
    d.setVar("EXTRA_CARGO_FLAGS", "")
    # What poky's bitbake.conf sets, for the class's path mapping (its DEBUG_PREFIX_MAP without
    # -fcanon-prefix-map, which the host's GCC may not know, and the sysroots, which are not here).
    d.setVar("TARGET_DBGSRC_DIR", "/usr/src/debug/${PN}/${PV}")
    d.setVar("DEBUG_PREFIX_MAP", " ".join(
        "-f%s-prefix-map=${%s}=${TARGET_DBGSRC_DIR}" % (kind, var)
        for var in ("S", "B") for kind in ("macro", "debug")))
    # meta-rust-bin's triples: an x86-64 target gets the build host's own.
    host = [l.split()[1] for l in subprocess.run(["rustc", "-vV"], check=True, capture_output=True,
                                                 text=True).stdout.splitlines()
            if l.startswith("host:")][0]
    d.setVar("RUST_TARGET", host)
    d.setVar("RUST_BUILD", host)
    # The part of meta-rust-bin's cargo_bin_do_compile (b8df9ac) that decides what cargo and the
    # cc crate see: RUSTFLAGS from EXTRA_RUSTFLAGS, debug info in release builds, poky's CFLAGS
    # exported and HOST_CFLAGS/HOST_CXXFLAGS set empty, --target and the target directory B.
    d.setVar("do_compile", "\n".join([
        'export CARGO_HOME="${CARGO_HOME}" CARGO_PROFILE_RELEASE_DEBUG="true"',
        'export CFLAGS="${DEBUG_PREFIX_MAP}" CXXFLAGS="${DEBUG_PREFIX_MAP}"',
        'export HOST_CFLAGS="" HOST_CXXFLAGS=""',
        'export RUSTFLAGS="${EXTRA_RUSTFLAGS}"',
        'cargo build --quiet --release --manifest-path "${CARGO_MANIFEST_PATH}" '
        '--target=${RUST_TARGET} --target-dir "${WORKDIR}/target" ${EXTRA_CARGO_FLAGS}']))
    # Where bb.build keeps a task's run files and starts it.
    d.setVar("T", "${WORKDIR}/temp")
    d.setVar("B", "${S}")
    return d


def configure(d):
    """Step 4: the class's two configure functions, as BitBake expands them."""
    os.makedirs(d.getVar("T"), exist_ok=True)
    body = d.getVar("secret_vm_cargo_vendor_config")
    script = 'bbfatal() { echo "bbfatal: $*" >&2; exit 1; }\nset -e\n' + body
    done = subprocess.run(["sh", "-c", script], stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        raise Failed("secret_vm_cargo_vendor_config exited %d: %s"
                     % (done.returncode, done.stderr.strip()))
    bb.build.exec_func("secret_vm_cargo_vendor_git", d)
    print("step 4: wrote %s/config.toml" % d.getVar("CARGO_HOME"))


def cargo_build(d, work):
    """Step 5: cargo build with the class's flags and CARGO_HOME, every proxy pointing at a
    closed port; returns the target directory."""
    flags = d.getVar("EXTRA_CARGO_FLAGS").split()
    env = dict(os.environ, CARGO_HOME=d.getVar("CARGO_HOME"))
    closed = "http://127.0.0.1:9"
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY",
                "CARGO_HTTP_PROXY"):
        env[var] = closed
    target = os.path.join(work, "target")
    cmd = ["cargo", "build", "--quiet", "--manifest-path",
           d.getVar("CARGO_MANIFEST_PATH"), "--target-dir", target] + flags
    subprocess.run(cmd, check=True, env=env, cwd=d.getVar("S"))
    print("step 5: cargo build %s succeeded offline" % " ".join(flags))
    return target


def stand_ins(work):
    """The classes inherited here that are not in this layer: poky's base; poky's
    cargo-update-recipe-crates, which our class inherits only for update_crates; and what
    meta-rust-bin's cargo_bin sets that our class and a recipe read (no meta-rust-bin checkout
    here). Returns the directory for BBPATH."""
    empty = "# stand-in written by cargo_vendor.py\n"
    cargo_bin = empty + (
        'export CARGO_HOME = "${WORKDIR}/cargo_home"\n'
        'CARGO_MANIFEST_PATH ?= "${S}/Cargo.toml"\n'
        'EXTRA_CARGO_FLAGS ??= ""\n'
        'EXTRA_RUSTFLAGS ??= ""\n')
    return stand_in_classes(work, {"base": empty, "cargo-update-recipe-crates": empty,
                                   "cargo_bin": cargo_bin})


def bitbake_log():
    """Collects what BitBake logs at ERROR (it sometimes logs instead of raising) and shows its
    warnings: it reports a checksum mismatch on a mirror as a warning, then tries the next
    source. Returns the collector."""
    errors = Errors()
    logging.getLogger("BitBake").addHandler(errors)
    shown = logging.StreamHandler(sys.stdout)
    shown.setLevel(logging.WARNING)
    shown.setFormatter(logging.Formatter("bitbake %(levelname)s: %(message)s"))
    logging.getLogger("BitBake").addHandler(shown)
    return errors


def recipe_crates(d):
    """The crates the recipe's SRC_URI names, as Cargo.lock would list them (name, version,
    checksum from the SRC_URI[<name>-<version>.sha256sum] flag)."""
    out = []
    for url in d.getVar("SRC_URI").split():
        if url.startswith("crate://"):
            name, version = url.split(";")[0].split("/")[-2:]
            checksum = d.getVarFlag("SRC_URI", "%s-%s.sha256sum" % (name, version))
            out.append({"name": name, "version": version, "checksum": checksum})
    return out


def recipe_workdir(layer, recipe, work, mirror, errors):
    """Steps 1 to 4 of --recipe in WORK: parse, gather the crates, fetch and unpack, configure.
    Returns the recipe's datastore."""
    d = datastore(layer, work, stand_ins(work))
    path = os.path.join(layer, recipe)
    name = os.path.basename(path)[:-len(".bb")]
    d.setVar("FILE", path)
    d.setVar("PN", name)
    d.setVar("BPN", name)
    # base.bbclass's search path for file:// sources, without the overrides.
    d.setVar("FILESPATH", "${FILE_DIRNAME}/${BP}:${FILE_DIRNAME}/${BPN}:${FILE_DIRNAME}/files")
    d.setVar("FILE_DIRNAME", os.path.dirname(path))
    bb.parse.init_parser(d)
    global step
    step = "1 parse %s" % recipe
    bb.parse.handle(path, d, include=True)
    inherited = d.getVar("__inherit_cache") or []
    if not any(c.endswith("/secret-vm-cargo-vendor.bbclass") for c in inherited):
        raise Failed("%s does not inherit secret-vm-cargo-vendor" % recipe)
    print("step 1: parsed %s: SRC_URI %s, S %s" % (recipe, d.getVar("SRC_URI"), d.getVar("S")))

    step = "2 crates from %s" % mirror
    wanted = recipe_crates(d)
    gather(wanted, mirror, os.path.join(work, "mirror"))
    print("step 2: took the %d crates of its SRC_URI from %s" % (len(wanted), mirror))

    step = "3 bitbake fetch and unpack"
    urls = d.getVar("SRC_URI").split()
    fetcher = bb.fetch2.Fetch(urls, d)
    fetcher.download()
    os.makedirs(d.getVar("WORKDIR"), exist_ok=True)
    fetcher.unpack(d.getVar("WORKDIR"))
    if errors.messages:
        raise Failed("; ".join(errors.messages))
    lock = os.path.join(d.getVar("S"), "Cargo.lock")
    key = lambda c: (c["name"], c["version"], c["checksum"])  # noqa: E731
    in_lock, in_recipe = sorted(map(key, crates_of(lock))), sorted(map(key, wanted))
    if in_lock != in_recipe:
        raise Failed("the crates include and %s differ: only in Cargo.lock %s, only in the "
                     "include %s" % (lock, sorted(set(in_lock) - set(in_recipe)),
                                     sorted(set(in_recipe) - set(in_lock))))
    print("step 3: bitbake %s fetched and unpacked %s (crate checksums verified) into %s; "
          "its crates include names the %d crates of Cargo.lock with their sha256"
          % (bb.__version__, " ".join(u for u in urls if not u.startswith("crate://")),
             d.getVar("S"), len(in_lock)))

    step = "4 the class's configure functions"
    configure(d)
    return d


def release_build(d):
    """do_compile as BitBake expands it (the class's prepend, then cargo_bin's build), with every
    proxy pointing at a closed port; returns the binary."""
    script = "set -e\n" + d.getVar("do_compile")
    env = dict(os.environ)
    for var in ("CFLAGS", "CXXFLAGS", "RUSTFLAGS"):
        env.pop(var, None)
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY",
                "CARGO_HTTP_PROXY"):
        env[var] = "http://127.0.0.1:9"
    subprocess.run(["sh", "-c", script], check=True, env=env, cwd=d.getVar("S"))
    binary = os.path.join(d.getVar("WORKDIR"), "target", d.getVar("RUST_TARGET"), "release",
                          d.getVar("PN"))
    with open(binary, "rb") as f:
        return f.read()


def compare_builds(d, again):
    """Step "the same binary from another work directory": the release builds of d and again."""
    first, second = release_build(d), release_build(again)
    if first != second:
        raise Failed("the release builds in %s and %s differ (%d and %d bytes)"
                     % (d.getVar("WORKDIR"), again.getVar("WORKDIR"), len(first), len(second)))
    return "the release builds in two work directories are identical (%d bytes, sha256 %s)" % (
        len(first), hashlib.sha256(first).hexdigest())


def recipe_build(layer, recipe, work, mirror):
    """--recipe: the layer's own recipe, fetched, configured, built and run; then built again in
    another work directory, which must give the same binary."""
    global step
    errors = bitbake_log()
    try:
        d = recipe_workdir(layer, recipe, work, mirror, errors)
        name = d.getVar("PN")

        step = "5 cargo build"
        target = cargo_build(d, work)

        step = "6 run %s" % name
        registers = os.path.join(work, "measurements")
        os.makedirs(registers)
        with open(os.path.join(registers, "rtmr3:sha384"), "wb"):
            pass
        digest = hashlib.sha256(b"secret-vm").digest()
        subprocess.run([os.path.join(target, "debug", name), "extend-rtmr", "3", digest.hex(),
                        "--measurements", registers], check=True)
        with open(os.path.join(registers, "rtmr3:sha384"), "rb") as f:
            written = f.read()
        if written != digest + bytes(16):
            raise Failed("the stand-in register holds %s, expected %s"
                         % (written.hex(), (digest + bytes(16)).hex()))
        print("step 6: %s wrote the zero-padded sha256 to the stand-in rtmr3:sha384" % name)

        other = os.path.join(work, "another-build-directory")
        os.makedirs(other)
        again = recipe_workdir(layer, recipe, other, mirror, errors)
        step = "7 the same binary from another build directory"
        print("step 7: " + compare_builds(d, again))
    except Exception as e:  # noqa: BLE001  (bb raises many types; each names the step)
        print("FAILED at step %s: %s: %s" % (step, type(e).__name__, e))
        return 1
    return 0


def main(argv):
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("layer", "project", "work", "mirror"):
        cli.add_argument(name)
    mode = cli.add_mutually_exclusive_group()
    mode.add_argument("--tamper", metavar="NAME")
    mode.add_argument("--omit-git", action="store_true")
    mode.add_argument("--wrong-checkout", action="store_true")
    mode.add_argument("--omit-crates", action="store_true")
    mode.add_argument("--recipe", action="store_true")
    args = cli.parse_args(argv[1:])  # exits 2 on bad usage
    layer, work = os.path.abspath(args.layer), os.path.abspath(args.work)
    if args.recipe:
        return recipe_build(layer, args.project, work, args.mirror)
    project = os.path.abspath(args.project)
    global step
    errors = bitbake_log()
    try:
        d = fixture_workdir(layer, project, work, args, errors)

        step = "5 cargo build"
        target = cargo_build(d, work)
        out = subprocess.run([os.path.join(target, "debug", "vendor-probe"), "secret-vm"],
                             check=True, capture_output=True, text=True).stdout.strip()
        expected = "sha256 " + hashlib.sha256(b"secret-vm").hexdigest()
        if out != expected:
            raise Failed("the program printed %r, expected %r" % (out, expected))
        print("step 5: the program printed %s" % out)

        if not refusal_expected(args):
            step = "6 no build path in the release binary"
            binary = release_build(d)
            workdir = d.getVar("WORKDIR").encode()
            if workdir in binary:
                raise Failed("the release binary names the work directory %s" % workdir.decode())
            # cc hands the compiler the path build.rs gives, so __FILE__ is relative; the C
            # code's debug info names the directory it was compiled in, under WORKDIR.
            if b"src/probe.c\0" not in binary:
                raise Failed("the release binary has no __FILE__ of probe.c: was it built?")
            print("step 6: the release binary has probe.c in it and never names the work "
                  "directory")

            other = os.path.join(work, "another-build-directory")
            os.makedirs(other)
            again = fixture_workdir(layer, project, other, args, errors)
            step = "7 the same binary from another build directory"
            print("step 7: " + compare_builds(d, again))
    except Exception as e:  # noqa: BLE001  (bb raises many types; each names the step)
        print("FAILED at step %s: %s: %s" % (step, type(e).__name__, e))
        return 1
    return 0


def refusal_expected(args):
    """Whether an option asks for a build that a step must refuse."""
    return bool(args.tamper or args.omit_git or args.wrong_checkout or args.omit_crates)


def fixture_workdir(layer, project, work, args, errors):
    """Steps 1 to 4 for the fixture project in WORK; returns its datastore."""
    global step
    mirror, tamper = args.mirror, args.tamper
    d = datastore(layer, work, stand_ins(work))
    bb.parse.init_parser(d)
    step = "1 crates include"
    crates = crates_of(os.path.join(project, "Cargo.lock"))
    # The include as a recipe without `require ${BPN}-crates.inc` would have it: no crate.
    wanted = [] if args.omit_crates else crates
    url, commit = git_dep(os.path.join(project, "Cargo.lock"))
    repo = os.path.join(work, "git", GIT_DEP)
    made = make_git_repo(os.path.join(project, "git-dep"), repo)
    if made != commit:
        raise Failed("git-dep/ commits as %s, Cargo.lock names %s" % (made, commit))
    inc = os.path.join(work, "vendor-probe-crates.inc")
    with open(inc, "w") as f:
        f.write(crates_inc(wanted, tamper) + git_inc(repo, commit, url, args))
    print("step 1: %d crates and %s %s from Cargo.lock" % (len(crates), GIT_DEP, commit))

    step = "2 crates from %s" % mirror
    gather(crates, mirror, os.path.join(work, "mirror"))
    print("step 2: took %d crates from %s" % (len(crates), mirror))

    step = "3 bitbake fetch and unpack"
    bb.parse.handle(inc, d, include=True)
    bb.parse.handle(os.path.join(layer, CLASS), d, include=True)
    urls = d.getVar("SRC_URI").split()
    fetcher = bb.fetch2.Fetch(urls, d)
    fetcher.download()
    workdir = d.getVar("WORKDIR")
    os.makedirs(workdir, exist_ok=True)
    fetcher.unpack(workdir)
    if not os.path.isfile(os.path.join(d.getVar("WORKDIR"), "cargo_git", GIT_DEP, "Cargo.toml")):
        raise Failed("the git fetcher did not check out %s" % GIT_DEP)
    vendor = d.getVar("SECRET_VM_CARGO_VENDOR_DIR")
    got = sorted(os.listdir(vendor)) if os.path.isdir(vendor) else []
    want = sorted("%s-%s" % (c["name"], c["version"]) for c in wanted)
    if got != want:
        raise Failed("unpacked %s, expected %s" % (got, want))
    if errors.messages:
        raise Failed("; ".join(errors.messages))
    print("step 3: bitbake %s fetched %d URLs (crate checksums verified), unpacked into %s"
          % (bb.__version__, len(urls), vendor))

    step = "4 the class's configure functions"
    # The project as do_unpack would leave it in S.
    shutil.copytree(project, d.getVar("S"), ignore=shutil.ignore_patterns("git-dep", "target"))
    configure(d)
    with open(os.path.join(project, "Cargo.lock"), "rb") as f, \
            open(os.path.join(d.getVar("S"), "Cargo.lock"), "rb") as g:
        if f.read() != g.read():
            raise Failed("the class changed Cargo.lock")
    if not refusal_expected(args):
        vendored = sorted(os.listdir(d.getVar("SECRET_VM_CARGO_GIT_VENDOR_DIR")))
        if vendored != ["probe-git-dep-0.1.0", "probe-git-util-0.1.0"]:
            raise Failed("the git crates vendored are %s, expected the repository's two" % vendored)
        print("step 4: vendored %s; Cargo.lock is unchanged" % ", ".join(vendored))
    return d


if __name__ == "__main__":
    sys.exit(main(sys.argv))
