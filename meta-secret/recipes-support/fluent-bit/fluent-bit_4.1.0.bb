SUMMARY = "Fluent Bit: the rootfs's log collector and forwarder"
DESCRIPTION = "fluent/fluent-bit 4.1.0, which every secret-vm rootfs installs. Built with \
cmake and without the parts whose build depends on the build host: the WebAssembly runtime \
and LuaJIT are off, sqlite is oe-core's, and the systemd unit goes where systemd.bbclass \
expects it."
HOMEPAGE = "https://fluentbit.io"
BUGTRACKER = "https://github.com/fluent/fluent-bit/issues"
SECTION = "net"
LICENSE = "Apache-2.0"
LIC_FILES_CHKSUM = "file://LICENSE;md5=2ee41112a44fe7014dce33e26468ba93"

# The commit the v4.1.0 tag names (the upstream build fetched the tag itself, which bitbake
# resolves over the network at parse time and which can be moved).
SRC_URI = "git://github.com/fluent/fluent-bit.git;protocol=https;nobranch=1"
SRCREV = "a8bd9e4cf636710dc7ce3af9d940bb4d91e660fc"
S = "${WORKDIR}/git"

inherit cmake pkgconfig systemd

# Every library the configuration looks for is named here, so nothing is picked up because it
# happens to be in the sysroot: openssl for TLS outputs, libyaml for YAML configs, systemd for
# the journal input, sqlite3 for the tail database.
DEPENDS = "bison-native flex-native zlib openssl libyaml systemd sqlite3"

# FLB_WASM: the bundled WebAssembly runtime compiles and *runs* a WRGSBASE probe at configure
# time (WAMR build-scripts/config_common.cmake), so the binary would depend on the build host's
# CPU, and a cross build cannot run it at all. FLB_LUAJIT/FLB_FILTER_LUA: off, as upstream
# built it. FLB_PREFER_SYSTEM_LIB_SQLITE: oe-core's sqlite3 rather than the bundled
# amalgamation. GNU_HOST: the --host of the autoconf-built libbacktrace. FLB_DEBUG and
# FLB_RELEASE off: either would set its own CMAKE_BUILD_TYPE (Debug, or RelWithDebInfo with
# link-time optimisation and another _FORTIFY_SOURCE level) over the distro's compiler flags.
EXTRA_OECMAKE = " \
    -DFLB_DEBUG=No \
    -DFLB_RELEASE=No \
    -DFLB_WASM=No \
    -DFLB_LUAJIT=No \
    -DFLB_FILTER_LUA=No \
    -DFLB_SHARED_LIB=No \
    -DFLB_EXAMPLES=No \
    -DFLB_TLS=Yes \
    -DFLB_CONFIG_YAML=Yes \
    -DFLB_IN_SYSTEMD=Yes \
    -DFLB_SQLDB=Yes \
    -DFLB_PREFER_SYSTEM_LIB_SQLITE=Yes \
    -DGNU_HOST=${HOST_SYS} \
"

COMPATIBLE_HOST = "x86_64.*-linux"

SYSTEMD_SERVICE:${PN} = "fluent-bit.service"

# The bundled cmetrics, cfl, ctraces, cprofiles and monkey define their __FILENAME__ macros as
# a make expression, '"$$(subst ${CMAKE_SOURCE_DIR}/,,$$(abspath $$<))"', that make never
# expands (its $$ escapes it): the binary gets that text, with ${S} in it, as a string literal
# (found with `strings` on a host build of this commit), which no -ffile-prefix-map rewrites.
# Define them as __FILE__, which the distro's prefix maps do rewrite.
do_configure:prepend() {
    for f in $(grep -rl --include=CMakeLists.txt 'FILENAME__=.*subst' ${S}/lib); do
        sed -i -e 's/\(-D__[A-Z_]*FILENAME__=\).*subst.*")$/\1__FILE__")/' "$f"
    done
    if grep -rq --include=CMakeLists.txt 'FILENAME__=.*subst' ${S}/lib; then
        bbfatal "fluent-bit: a __FILENAME__ definition still holds the source path"
    fi
    # flb_info.h.in sets FLB_SOURCE_DIR to the source directory, and the stack-trace code
    # compiles in its length (it skips sizeof(FLB_SOURCE_DIR) characters of each file name), so
    # the machine code depended on the build directory: two host builds of this commit in
    # directories whose names differ in length differed in one instruction. After the distro's
    # prefix map the debug file names start with ${TARGET_DBGSRC_DIR}, which is what to skip.
    sed -i -e 's|"@CMAKE_SOURCE_DIR@"|"${TARGET_DBGSRC_DIR}"|' ${S}/include/fluent-bit/flb_info.h.in
    grep -q 'FLB_SOURCE_DIR "${TARGET_DBGSRC_DIR}"' ${S}/include/fluent-bit/flb_info.h.in \
        || bbfatal "fluent-bit: FLB_SOURCE_DIR is not ${TARGET_DBGSRC_DIR} in flb_info.h.in"
}

# src/CMakeLists.txt installs the unit into the directory systemd.pc names, or, when pkg-config
# finds none, into /lib/systemd/system if that exists *on the build host*. Put it where
# systemd.bbclass looks, whichever happened, and stop if cmake installed none.
do_install:append() {
    unit=$(find ${D} -path '*/systemd/system/fluent-bit.service' -type f)
    if [ -z "$unit" ]; then
        bbfatal "fluent-bit: cmake installed no fluent-bit.service under ${D}"
    fi
    if [ "$unit" != "${D}${systemd_system_unitdir}/fluent-bit.service" ]; then
        install -D -m 0644 "$unit" ${D}${systemd_system_unitdir}/fluent-bit.service
        rm "$unit"
        # Remove the directories left empty, up to ${D} and never above it.
        dir=$(dirname "$unit")
        while [ "$dir" != "${D}" ] && rmdir "$dir" 2>/dev/null; do
            dir=$(dirname "$dir")
        done
    fi
}
