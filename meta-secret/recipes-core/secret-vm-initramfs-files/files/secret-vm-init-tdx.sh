# shellcheck shell=sh
# TDX measurement, shared by init-tdx and init-gcp-tdx (installed as /lib/secret-vm-tdx.sh).

# Records the workload in the TD's runtime measurements. Arguments: the sha256 of
# docker-compose.yaml, of the OS image (the rootfs ISO or root partition), and of
# docker-files.tar or "" when there is none.
#
# The init defines how its kernel extends RTMR3 before calling this: `extend_rtmr3 <sha256 hex>`
# (zero-padded to the 48 bytes of an RTMR) and `show_measurements` (for the console log).
# init-tdx uses attest-tool through /dev/tdx_guest, init-gcp-tdx secretvm-guest through sysfs.
#
# With KMS contract (the default): RTMR3 is extended, in this order, with the compose hash, the
# image hash and the docker-files hash, so RTMR3 = SHA384 chain over those padded values.
# With KMS dstack or gramine: dstack-util records events app-id, compose-hash, os-image-hash and
# docker-files-hash, the order dstack's verifiers replay.
measure_workload_tdx() {
    compose=$1
    image=$2
    files=$3
    kms=$(kms_of_config) || die "$CONFIG_DIR/secret-vm.json is not valid JSON"
    say "KMS=$kms"
    case $kms in
        dstack | gramine)
            app_id=$(jq -r '.dstack_app_id // ""' "$CONFIG_DIR/secret-vm.json") \
                || die "cannot read .dstack_app_id from $CONFIG_DIR/secret-vm.json"
            # The app id is measured; a VM without one must not boot (`secretvm measure rtmr3
            # --config-dir` refuses such a config too).
            [ -n "$app_id" ] || die "KMS=$kms needs .dstack_app_id in $CONFIG_DIR/secret-vm.json"
            must dstack-util extend --event app-id --payload "$app_id"
            must dstack-util extend --event compose-hash --payload "$compose"
            must dstack-util extend --event os-image-hash --payload "$image"
            if [ -n "$files" ]; then
                must dstack-util extend --event docker-files-hash --payload "$files"
            fi
            ;;
        *)
            must extend_rtmr3 "$compose"
            must extend_rtmr3 "$image"
            if [ -n "$files" ]; then
                must extend_rtmr3 "$files"
            fi
            ;;
    esac
    # For the console log only; the measurements above are what counts.
    show_measurements || say "warning: cannot show the measurements (they are recorded)"
}
