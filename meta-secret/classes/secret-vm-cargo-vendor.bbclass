# Offline Rust builds on top of meta-rust-bin's cargo_bin class.
#
# cargo_bin runs `cargo build` with the network (the upstream recipes set
# do_compile[network] = "1"), so what a build compiles depends on the day it runs. With this
# class, cargo reads only the crates that bitbake's crate fetcher downloaded, each checked
# against the sha256 in the recipe's ${BPN}-crates.inc, and cargo is run --frozen: no network,
# and Cargo.lock must already say exactly what is built.
#
# A recipe inherits cargo_bin and this class, then `require ${BPN}-crates.inc`. That file is
# written, from the Cargo.lock of the pinned source, by poky's cargo-update-recipe-crates
# class, which this one inherits:
#     bitbake -c update_crates <recipe>
# (run once with the network, then commit the file).
#
# Crates that Cargo.lock takes from git are not in that file. The recipe fetches each git
# repository with bitbake's git fetcher (a SRC_URI entry with name= and destsuffix=, and
# SRCREV_<name> the commit Cargo.lock names) and tells this class where each checkout is:
#     SECRET_VM_CARGO_GIT[<name>] = "<repository URL as in Cargo.lock> <checkout under WORKDIR>"
# for example
#     SECRET_VM_CARGO_GIT[rocket] = "https://github.com/rwf2/Rocket cargo_git/rocket"
# cargo then vendors the crates Cargo.lock takes from those repositories (`cargo vendor`, reading
# each repository from its checkout) into SECRET_VM_CARGO_GIT_VENDOR_DIR, with their manifests
# normalized as cargo publishes them, and builds them from there: each git source is replaced by
# that directory, so the packages keep their git identity. Cargo.lock is not changed. A
# repository of Cargo.lock that no flag names, a flag that names no repository of Cargo.lock, and
# a checkout without the commit Cargo.lock names each stop the build, naming them.

inherit cargo-update-recipe-crates

# Where bitbake's crate fetcher unpacks crate:// sources (bb.fetch2.crate, one directory per
# crate with a .cargo-checksum.json): WORKDIR/cargo_home/bitbake, fixed by the fetcher.
SECRET_VM_CARGO_VENDOR_DIR = "${WORKDIR}/cargo_home/bitbake"

# --frozen is --locked plus --offline: a Cargo.lock that disagrees with Cargo.toml, or a crate
# that is not vendored, stops the build instead of being resolved from the network.
EXTRA_CARGO_FLAGS:append = " --frozen"

# Build paths stay out of the binaries. cargo hands rustc the crates under WORKDIR by absolute
# path, and those paths end up in the debug info and so in the linker's build id, which the
# stripped binary keeps: built in another build directory (another TOPDIR, or repro-check's
# second build), the same recipe gave other bytes, and with them another initramfs and other
# measurements. poky's own Rust classes map WORKDIR away (rust-common's RUST_DEBUG_REMAP);
# meta-rust-bin's cargo_bin does not, so this class does it, with the same mapping.
EXTRA_RUSTFLAGS:append = " --remap-path-prefix=${WORKDIR}=${TARGET_DBGSRC_DIR}"
# The same for C and assembly that crates compile with the cc crate from their own sources
# (ring's assembly, a -sys crate's C, a workspace member beside S): they are under WORKDIR,
# and their paths went into __FILE__ strings and debug info. cc takes its flags from
# CFLAGS_<target triple> first, then HOST_CFLAGS (or TARGET_CFLAGS when it cross-compiles),
# then CFLAGS. meta-rust-bin gives an x86-64 target the build host's own triple, so cc does
# not cross-compile, and takes HOST_CFLAGS, which cargo_bin sets empty: poky's CFLAGS and its
# DEBUG_PREFIX_MAP (which maps only S, B and the sysroots anyway) never reach it. So the map is
# handed to cc under the target triple's name when the two triples are the same, and prepended
# to DEBUG_PREFIX_MAP for the other case (prepended, so that GCC, which tries the last option
# first, still maps S, B and the sysroots as poky does).
SECRET_VM_CC_PREFIX_MAP = "-ffile-prefix-map=${WORKDIR}=${TARGET_DBGSRC_DIR}"
DEBUG_PREFIX_MAP:prepend = "${SECRET_VM_CC_PREFIX_MAP} "
do_compile:prepend() {
    if [ "${RUST_TARGET}" = "${RUST_BUILD}" ]; then
        secret_vm_triple=$(echo "${RUST_TARGET}" | tr - _)
        export "CFLAGS_$secret_vm_triple=${SECRET_VM_CC_PREFIX_MAP}"
        export "CXXFLAGS_$secret_vm_triple=${SECRET_VM_CC_PREFIX_MAP}"
    fi
}

# Written after cargo_bin's configure, into the CARGO_HOME cargo_bin exports.
secret_vm_cargo_vendor_config() {
    if [ ! -f "${SECRET_VM_CARGO_LOCK}" ]; then
        bbfatal "${SECRET_VM_CARGO_LOCK} does not exist: --frozen builds need the project's Cargo.lock"
    fi
    if [ ! -d "${SECRET_VM_CARGO_VENDOR_DIR}" ]; then
        if grep -q '^source = "registry+' "${SECRET_VM_CARGO_LOCK}"; then
            bbfatal "no vendored crates in ${SECRET_VM_CARGO_VENDOR_DIR}: does the recipe require ${BPN}-crates.inc (bitbake -c update_crates ${PN})?"
        fi
        # Cargo.lock names no registry crate (a package without dependencies, like
        # secretvm-guest): there is nothing to vendor, and cargo needs the directory all the same.
        mkdir -p "${SECRET_VM_CARGO_VENDOR_DIR}"
    fi
    mkdir -p "${CARGO_HOME}"
    cat > "${CARGO_HOME}/config.toml" <<SECRET_VM_CARGO_EOF
[source.bitbake]
directory = "${SECRET_VM_CARGO_VENDOR_DIR}"

[source.crates-io]
replace-with = "bitbake"

[net]
offline = true
SECRET_VM_CARGO_EOF
}
# The Cargo.lock cargo reads: beside the manifest cargo_bin builds.
SECRET_VM_CARGO_LOCK ?= "${@os.path.join(os.path.dirname(d.getVar('CARGO_MANIFEST_PATH')), 'Cargo.lock')}"

# Where the crates taken from git are vendored: a path under WORKDIR, which the mappings above
# take out of the binaries, and the same in every build of the recipe.
SECRET_VM_CARGO_GIT_VENDOR_DIR = "${WORKDIR}/cargo_git_vendor"

python secret_vm_cargo_vendor_git() {
    import json
    import pathlib
    import shutil
    import subprocess
    import urllib.parse

    checkouts = {}
    for name, value in sorted((d.getVarFlags("SECRET_VM_CARGO_GIT") or {}).items()):
        words = (value or "").split()
        if len(words) != 2:
            bb.fatal('SECRET_VM_CARGO_GIT[%s] is "%s", expected "<repository URL as in Cargo.lock> '
                     '<checkout under WORKDIR>"' % (name, value))
        if words[0] in checkouts:
            bb.fatal("SECRET_VM_CARGO_GIT[%s] and SECRET_VM_CARGO_GIT[%s] both name %s"
                     % (checkouts[words[0]][0], name, words[0]))
        checkouts[words[0]] = (name, os.path.join(d.getVar("WORKDIR"), words[1]))

    # secret_vm_cargo_vendor_config, which runs first, has stopped the build if there is none.
    lock = d.getVar("SECRET_VM_CARGO_LOCK")
    # The git sources of Cargo.lock: "git+<url>[?<kind>=<reference>]#<commit>", one [[package]]
    # at a time (its name and version lines come before its source line; the file's own
    # `version = <n>` comes before the first package).
    sources, packages, package, name, version = {}, [], False, None, None
    with open(lock) as f:
        for line in f:
            if line.startswith("[[package]]"):
                package, name, version = True, None, None
            elif package and line.startswith("name = "):
                name = line.split('"')[1]
            elif package and line.startswith("version = "):
                version = line.split('"')[1]
            elif line.startswith('source = "git+'):
                source, _, commit = line.split('"')[1].partition("#")
                url, _, query = source[len("git+"):].partition("?")
                reference = urllib.parse.parse_qsl(query)
                if len(commit) != 40 or len(reference) > 1 or \
                        any(k not in ("branch", "tag", "rev") for k, _ in reference):
                    bb.fatal('%s: package %s has source "%s", expected '
                             '"git+<url>[?branch=|tag=|rev=<name>]#<commit>"'
                             % (lock, name, line.split('"')[1]))
                sources.setdefault(source, (url, reference, commit, []))[3].append(name)
                packages.append("%s-%s" % (name, version))
    unnamed = sorted("%s (%s)" % (url, ", ".join(crates))
                     for url, _, _, crates in sources.values() if url not in checkouts)
    if unnamed:
        bb.fatal("%s takes crates from git repositories that SECRET_VM_CARGO_GIT does not name: %s"
                 % (lock, "; ".join(unnamed)))
    unused = sorted("SECRET_VM_CARGO_GIT[%s] (%s)" % (checkouts[url][0], url)
                    for url in set(checkouts) - {s[0] for s in sources.values()})
    if unused:
        bb.fatal("%s takes no crate from the repositories of %s" % (lock, ", ".join(unused)))
    if not sources:
        return

    for url, _, commit, crates in sources.values():
        name, checkout = checkouts[url]
        found = subprocess.run(["git", "--git-dir", os.path.join(checkout, ".git"),
                                "cat-file", "-e", commit + "^{commit}"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if found.returncode != 0:
            bb.fatal("SECRET_VM_CARGO_GIT[%s]: %s is not a git checkout with commit %s, which %s "
                     "names for %s (is the repository in SRC_URI with that destsuffix, and "
                     "SRCREV_%s that commit?)"
                     % (name, checkout, commit, lock, ", ".join(crates), name))

    # TOML basic strings and quoted keys: JSON's escapes are TOML's.
    quote = json.dumps
    vendor_dir = d.getVar("SECRET_VM_CARGO_GIT_VENDOR_DIR")
    config = os.path.join(d.getVar("CARGO_HOME"), "config.toml")
    with open(config) as f:
        base = f.read()
    # For `cargo vendor`: each git source replaced by its checkout, read through git at the
    # locked commit. Then, for the build: each replaced by the vendored crates.
    by_checkout, by_vendor = [], []
    for i, source in enumerate(sorted(sources)):
        url, reference, commit, _ = sources[source]
        table = "[source.%s]\ngit = %s\n" % (quote(source), quote(url))
        table += "".join("%s = %s\n" % (k, quote(v)) for k, v in reference)
        local = quote(pathlib.Path(checkouts[url][1]).as_uri())
        by_checkout.append('%sreplace-with = "secret-vm-git-%d"\n\n[source.secret-vm-git-%d]\n'
                           'git = %s\nrev = %s\n' % (table, i, i, local, quote(commit)))
        by_vendor.append(table + 'replace-with = "secret-vm-git"\n')
    with open(config, "w") as f:
        f.write(base + "\n" + "\n".join(by_checkout))
    shutil.rmtree(vendor_dir, ignore_errors=True)
    # Reading a local repository is no network use, but the config's offline setting refuses it.
    env = dict(os.environ, CARGO_HOME=d.getVar("CARGO_HOME"), CARGO_NET_OFFLINE="false")
    done = subprocess.run(["cargo", "vendor", "--locked", "--respect-source-config",
                           "--versioned-dirs", "--manifest-path", d.getVar("CARGO_MANIFEST_PATH"),
                           vendor_dir],
                          env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        bb.fatal("cargo vendor of the crates taken from git failed:\n%s" % done.stderr)
    # It copied the crates.io crates too: they stay where bitbake's crate fetcher put them.
    for entry in sorted(os.listdir(vendor_dir)):
        if entry not in packages:
            shutil.rmtree(os.path.join(vendor_dir, entry))
    missing = sorted(set(packages) - set(os.listdir(vendor_dir)))
    if missing:
        bb.fatal("cargo vendor did not write %s into %s" % (", ".join(missing), vendor_dir))
    with open(config, "w") as f:
        f.write(base + '\n[source.secret-vm-git]\ndirectory = %s\n\n' % quote(vendor_dir)
                + "\n".join(by_vendor))
}

do_configure[postfuncs] += "secret_vm_cargo_vendor_config secret_vm_cargo_vendor_git"
