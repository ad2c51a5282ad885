# LUKS2 keyslots with cipher_null open only with the empty passphrase (see the patch), so a
# header the host plants on encryptedfs.qcow2 cannot make the guest's passphrase unlock a
# volume key the host knows. This append names the version: when meta-openembedded moves to
# another cryptsetup, BitBake stops on the dangling append, and the patch is dropped (2.8.1
# and later have the rule) or rewritten.
#
# What the patch does not cover: LUKS2 metadata is not authenticated, and the host can also set
# the *data segment* cipher to cipher_null; whatever opens the volume in the guest must check
# the segment cipher before it trusts the volume.

FILESEXTRAPATHS:prepend := "${THISDIR}/files:"

SRC_URI += "file://0001-luks2-cipher-null-keyslot-only-with-empty-passphrase.patch"
