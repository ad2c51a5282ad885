SUMMARY = "NVIDIA Container Toolkit: the runtime, prestart hook and nvidia-ctk that give containers the GPU"
HOMEPAGE = "https://github.com/NVIDIA/nvidia-container-toolkit"
LICENSE = "Apache-2.0"
LIC_FILES_CHKSUM = "file://src/${GO_IMPORT}/LICENSE;md5=3b83ef96387f14655fc854ddc3c6bd57"

GO_IMPORT = "github.com/NVIDIA/nvidia-container-toolkit"
# 1.14.6 (versions.mk), the commit the upstream build pinned. Its Go modules are vendored in the
# repository (vendor/), so the build reads nothing from the network. No destsuffix: scarthgap's
# go.bbclass unpacks a git SRC_URI into ${S}/src/${GO_IMPORT}/ itself (GO_SRCURI_DESTSUFFIX is
# the name of that path in later Yocto releases; scarthgap does not define it).
SRC_URI = "git://github.com/NVIDIA/nvidia-container-toolkit.git;protocol=https;nobranch=1 \
           file://config.toml"
SRCREV = "4668c511de4b311c96bc3dd0310bff40b75083bd"

inherit go-mod

COMPATIBLE_HOST = "x86_64.*-linux"

# Only the commands (not the libraries under pkg/), stamped as the project's Makefile does.
GO_INSTALL = "${GO_IMPORT}/cmd/..."
GO_EXTRA_LDFLAGS = "-X ${GO_IMPORT}/internal/info.version=${PV} -X ${GO_IMPORT}/internal/info.gitCommit=${SRCREV}"
GOBUILDFLAGS:append = " -mod=vendor"
# internal/cuda calls cuInit and friends from the libcuda that go-nvml loads at run time: they
# are left undefined at link time and must be bound lazily.
LDFLAGS += "-Wl,-z,lazy"

# Only the binaries; go.bbclass's do_install would also ship the source tree.
do_install() {
    install -d ${D}${bindir}
    for cmd in nvidia-container-runtime nvidia-container-runtime.cdi \
               nvidia-container-runtime.legacy nvidia-container-runtime-hook nvidia-ctk; do
        install -m 0755 ${B}/${GO_BUILD_BINDIR}/$cmd ${D}${bindir}/$cmd
    done
    # The three runtimes must leave the CUDA driver calls to the dynamic loader: each needs
    # cuInit and the others as undefined dynamic symbols, or they would be calls to nothing.
    for cmd in nvidia-container-runtime nvidia-container-runtime.cdi nvidia-container-runtime.legacy; do
        for sym in cuInit cuDriverGetVersion cuDeviceGet cuDeviceGetAttribute; do
            ${NM} -D --undefined-only ${D}${bindir}/$cmd | grep -q " $sym\$" \
                || bbfatal "$cmd has no undefined dynamic symbol $sym"
        done
    done
    # NVIDIA's packages install the hook under this name as well, which some docker versions
    # look for when a container asks for --gpus.
    ln -sf nvidia-container-runtime-hook ${D}${bindir}/nvidia-container-toolkit
    install -D -m 0644 ${WORKDIR}/config.toml ${D}${sysconfdir}/nvidia-container-runtime/config.toml
}

# The hook runs nvidia-container-cli, from libnvidia-container.
RDEPENDS:${PN} = "libnvidia-container"
