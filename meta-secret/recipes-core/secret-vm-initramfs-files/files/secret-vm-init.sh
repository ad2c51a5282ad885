# shellcheck shell=sh
# The functions the secret-vm /init scripts share (installed as /lib/secret-vm-init.sh).
#
# Rule for every step: a failure stops the boot. Nothing here falls back to booting without a
# measurement or a check; `die` prints why on the console and powers the VM off.

# Where the host's config (docker-compose.yaml, secret-vm.json, docker-files.tar) is mounted.
# The host can change those files at any time, so nothing measured is read from there:
CONFIG_SOURCE=/config-source
# the config is copied into this guest-memory tmpfs first, and the copies are what is hashed
# and what the workload sees (as /mnt/config after switch_root).
CONFIG_DIR=/mnt

say() {
    echo "secret-vm init: $*"
}

die() {
    echo "secret-vm init: FATAL: $*" >&2
    echo "secret-vm init: refusing to boot this VM; powering off" >&2
    sync
    poweroff -f
    # Without poweroff, init exiting panics the kernel, which does not boot either.
    exit 1
}

# Runs a command; stops the boot if it fails.
must() {
    "$@" || die "'$*' failed with exit status $?"
}

# The kernel API file systems; everything later needs /proc, /sys and /dev.
mount_api_filesystems() {
    mkdir -p /dev /proc /sys /run "$CONFIG_DIR" "$CONFIG_SOURCE"
    must mount -t devtmpfs devtmpfs /dev
    must mount -t proc proc /proc
    must mount -t sysfs sysfs /sys
    must mount -t tmpfs tmpfs /run
    mkdir -p /dev/pts
    must mount -t devpts devpts /dev/pts
}

# Copies the config mounted on $CONFIG_SOURCE into a tmpfs on $CONFIG_DIR: what is measured and
# what the workload later reads are then the same bytes, whatever the host does to its copy.
snapshot_config() {
    must mount -t tmpfs -o mode=0755 tmpfs "$CONFIG_DIR"
    must cp -a "$CONFIG_SOURCE/." "$CONFIG_DIR/"
}

# Mounts the host's 9p share with the tag guest_config (QEMU -virtfs) and snapshots it.
mount_config_9p() {
    must mount -t 9p -o trans=virtio,version=9p2000.L guest_config "$CONFIG_SOURCE"
    snapshot_config
}

# Prints the one block device whose file-system label is $1 in $2, the output of blkid
# (`/dev/sda1: LABEL="root" UUID=...`); fails if no device or several carry the label.
device_with_label() {
    found=$(printf '%s\n' "$2" | sed -n "s/^\([^:]*\):.* LABEL=\"$1\".*/\1/p") || return 1
    count=$(printf '%s\n' "$found" | grep -c .)
    if [ "$count" -ne 1 ]; then
        echo "secret-vm init: expected one device labelled $1, found $count: $found" >&2
        return 1
    fi
    printf '%s\n' "$found"
}

# Succeeds when $1 is a sha256 as 64 lowercase hex digits.
is_sha256() {
    case $1 in
        '' | *[!0-9a-f]*) return 1 ;;
    esac
    [ ${#1} -eq 64 ]
}

# Prints the sha256 of file $1 as 64 lowercase hex digits.
sha256_of() {
    line=$(sha256sum "$1") || return 1
    digest=${line%% *}
    is_sha256 "$digest" || return 1
    printf '%s\n' "$digest"
}

# The name the OS image gets under device-mapper, and the device it is read through once it is
# pinned.
OS_IMAGE_NAME=secret-vm-os
OS_IMAGE=/dev/mapper/$OS_IMAGE_NAME

# Prints the block size of the $2 file system on device $1: 2048 for iso9660 (its logical
# block, as every ISO writer, ours included, makes it), and for ext4 what util-linux blkid
# reads from the superblock.
fs_block_size() {
    case $2 in
        iso9660) echo 2048 ;;
        ext4) blkid -s BLOCK_SIZE -o value "$1" ;;
        *)
            echo "secret-vm init: no block size known for file system type $2" >&2
            return 1
            ;;
    esac
}

# Pins the OS image on block device $1, a $2 file system (iso9660 or ext4), to the bytes it
# holds now, and prints their sha256, the image's measurement; from then on the image is read
# only through $OS_IMAGE. The image is too large to copy into memory and the host can change
# its device at any time, so `secretvm-guest pin-os-image` reads it once, hashing every byte
# both into the sha256 and into a dm-verity hash tree that stays in guest memory, and maps the
# device through that tree as $OS_IMAGE: every later read is checked against the tree, and a
# block the host changed fails with an I/O error instead of being read. What is measured and
# what is mounted are then the same bytes. The tree's data block is the largest of 4096 to
# 512 bytes that is no larger than the file system's block (it becomes the mapped device's
# logical block size, which a file system cannot go below) and divides the image, so the mapped
# device is the whole image.
pin_os_image() {
    fs_block=$(fs_block_size "$1" "$2") || return 1
    digest=$(secretvm-guest pin-os-image "$1" "$OS_IMAGE_NAME" "$fs_block") || return 1
    is_sha256 "$digest" || return 1
    [ -b "$OS_IMAGE" ] || return 1
    printf '%s\n' "$digest"
}

# The KMS the workload uses, from secret-vm.json's .KMS; "contract" when the file or the key is
# absent. A secret-vm.json that is present but not valid JSON stops the boot.
kms_of_config() {
    if [ ! -e "$CONFIG_DIR/secret-vm.json" ]; then
        echo contract
        return 0
    fi
    jq -r '.KMS // "contract"' "$CONFIG_DIR/secret-vm.json"
}

# Prints the value of key $1 in the kernel command line $2 (the text of /proc/cmdline). Fails
# when the key is absent or appears more than once (two values would leave it open which one
# was meant).
cmdline_value() {
    value=
    seen=0
    set -f
    for word in $2; do
        case $word in
            "$1"=*)
                value=${word#*=}
                seen=$((seen + 1))
                ;;
        esac
    done
    set +f
    [ "$seen" -eq 1 ] || return 1
    printf '%s\n' "$value"
}

# Mounts an overlay on /root: device $1 (file-system type $2) read-only below, a tmpfs above.
# The workload may write anywhere; the writes live in memory and never reach the image.
mount_overlay_root() {
    mkdir -p /lower /overlay /root
    must mount -r -t "$2" "$1" /lower
    must mount -t tmpfs tmpfs /overlay
    mkdir -p /overlay/upper /overlay/work
    must mount -t overlay overlay \
        -o lowerdir=/lower,upperdir=/overlay/upper,workdir=/overlay/work /root
}

# Moves the measured config copy (to /mnt/config), the host's live config (to
# /mnt/config-source: not measured, for files the workload hands back to the host) and the API
# file systems into the new root and starts its systemd.
switch_to_root() {
    mkdir -p /root/mnt/config /root/mnt/config-source /root/mnt/secure /root/dev /root/proc \
        /root/sys /root/run
    must mount --move "$CONFIG_DIR" /root/mnt/config
    must mount --move "$CONFIG_SOURCE" /root/mnt/config-source
    must mount --move /run /root/run
    must mount --move /sys /root/sys
    must mount --move /proc /root/proc
    must mount --move /dev /root/dev
    say "switching to the root file system"
    # If switch_root cannot start, the shell exits, init ends and the kernel panics: no boot.
    exec switch_root /root /usr/sbin/init
}
