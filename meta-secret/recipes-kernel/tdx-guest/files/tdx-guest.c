// SPDX-License-Identifier: GPL-2.0-only
/*
 * /dev/tdx_guest for the secret-vm TDX initramfs.
 *
 * attest-tool extends RTMR3 through libtdx_attest (Intel DCAP 1.22), which asks /dev/tdx_guest
 * for two things: a TDREPORT (TDX_CMD_GET_REPORT0) and an RTMR extend (TDX_CMD_EXTEND_RTMR).
 * The in-tree tdx-guest driver of the kernels this build uses (6.9) has no extend, so this
 * module provides both, each as one TDCALL to the TDX module:
 *
 *   TDG.MR.REPORT       (leaf 4): RCX = GPA of the 1024-byte TDREPORT_STRUCT (1024-aligned),
 *                                 RDX = GPA of the 64-byte REPORTDATA (64-aligned), R8 = 0.
 *   TDG.MR.RTMR.EXTEND  (leaf 2): RCX = GPA of the 48-byte extend data (64-aligned),
 *                                 RDX = the RTMR index (0 to 3).
 *
 * RAX returns the completion status, 0 on success (Intel TDX Module ABI specification). Any
 * other status is returned to the caller as -EIO, so a failed extend fails attest-tool and
 * with it the boot: nothing is measured silently wrong, or silently not at all.
 *
 * The buffers are kmalloc'd per request: a power-of-two kmalloc is aligned to its size, and
 * virt_to_phys of the direct map is the private GPA the TDX module expects.
 *
 * Outside a TD, loading fails with -ENODEV before /dev/tdx_guest exists, so TDCALL (which
 * faults outside a TD) is never reached. The kernel's own tdx-guest driver must be off
 * (CONFIG_TDX_GUEST_DRIVER=n, as secret-vm-tdx.cfg sets), since both register tdx_guest.
 */

#include <linux/fs.h>
#include <linux/ioctl.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/types.h>
#include <linux/uaccess.h>
#include <asm/cpufeature.h>
#include <asm/io.h>

#define TDX_REPORTDATA_LEN	64
#define TDX_REPORT_LEN		1024
#define TDX_EXTEND_DATA_LEN	48
#define TDX_RTMR_COUNT		4

#define TDG_MR_RTMR_EXTEND	2
#define TDG_MR_REPORT		4

/* The request layouts and ioctl numbers libtdx_attest 1.22 uses (tdx_attest.c). */
struct tdx_report_req {
	__u8 reportdata[TDX_REPORTDATA_LEN];
	__u8 tdreport[TDX_REPORT_LEN];
};

struct tdx_extend_rtmr_req {
	__u8 data[TDX_EXTEND_DATA_LEN];
	__u8 index;
};

#define TDX_CMD_GET_REPORT0	_IOWR('T', 1, struct tdx_report_req)
/* libtdx_attest defines the extend with _IOR, or with _IOW when built with V3_DRIVER. */
#define TDX_CMD_EXTEND_RTMR	_IOR('T', 3, struct tdx_extend_rtmr_req)
#define TDX_CMD_EXTEND_RTMR_V3	_IOW('T', 3, struct tdx_extend_rtmr_req)

/* TDCALL is 66 0f 01 cc; written as bytes for assemblers that do not know it. */
static u64 tdcall(u64 leaf, u64 rcx, u64 rdx, u64 r8)
{
	register u64 r8_reg asm("r8") = r8;
	u64 rax = leaf;

	asm volatile(".byte 0x66, 0x0f, 0x01, 0xcc"
		     : "+a"(rax), "+c"(rcx), "+d"(rdx), "+r"(r8_reg)
		     :
		     : "r9", "r10", "r11", "memory");
	return rax;
}

static long get_report0(struct tdx_report_req __user *req)
{
	u8 *reportdata, *report;
	long ret = 0;
	u64 status;

	reportdata = kmalloc(TDX_REPORTDATA_LEN, GFP_KERNEL);
	report = kzalloc(TDX_REPORT_LEN, GFP_KERNEL);
	if (!reportdata || !report) {
		ret = -ENOMEM;
		goto out;
	}
	if (copy_from_user(reportdata, req->reportdata, TDX_REPORTDATA_LEN)) {
		ret = -EFAULT;
		goto out;
	}
	status = tdcall(TDG_MR_REPORT, virt_to_phys(report), virt_to_phys(reportdata), 0);
	if (status) {
		pr_err("tdx-guest: TDG.MR.REPORT failed with status %#llx\n", status);
		ret = -EIO;
		goto out;
	}
	if (copy_to_user(req->tdreport, report, TDX_REPORT_LEN))
		ret = -EFAULT;
out:
	kfree(report);
	kfree(reportdata);
	return ret;
}

static long extend_rtmr(struct tdx_extend_rtmr_req __user *req)
{
	u8 index;
	u8 *data;
	long ret = 0;
	u64 status;

	if (get_user(index, &req->index))
		return -EFAULT;
	if (index >= TDX_RTMR_COUNT)
		return -EINVAL;
	/* 64 bytes: the TDX module wants the 48 bytes 64-byte aligned. */
	data = kzalloc(64, GFP_KERNEL);
	if (!data)
		return -ENOMEM;
	if (copy_from_user(data, req->data, TDX_EXTEND_DATA_LEN)) {
		ret = -EFAULT;
		goto out;
	}
	status = tdcall(TDG_MR_RTMR_EXTEND, virt_to_phys(data), index, 0);
	if (status) {
		pr_err("tdx-guest: TDG.MR.RTMR.EXTEND of RTMR%u failed with status %#llx\n",
		       index, status);
		ret = -EIO;
	}
out:
	kfree(data);
	return ret;
}

static long tdx_guest_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	void __user *uarg = (void __user *)arg;

	switch (cmd) {
	case TDX_CMD_GET_REPORT0:
		return get_report0(uarg);
	case TDX_CMD_EXTEND_RTMR:
	case TDX_CMD_EXTEND_RTMR_V3:
		return extend_rtmr(uarg);
	default:
		return -ENOTTY;
	}
}

static const struct file_operations tdx_guest_fops = {
	.owner = THIS_MODULE,
	.unlocked_ioctl = tdx_guest_ioctl,
};

static struct miscdevice tdx_guest_dev = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "tdx_guest",
	.fops = &tdx_guest_fops,
};

static int __init tdx_guest_init(void)
{
	if (!cpu_feature_enabled(X86_FEATURE_TDX_GUEST)) {
		pr_info("tdx-guest: not a TDX guest, /dev/tdx_guest not created\n");
		return -ENODEV;
	}
	return misc_register(&tdx_guest_dev);
}

static void __exit tdx_guest_exit(void)
{
	misc_deregister(&tdx_guest_dev);
}

module_init(tdx_guest_init);
module_exit(tdx_guest_exit);

MODULE_DESCRIPTION("secret-vm /dev/tdx_guest: TDREPORT and RTMR extend for libtdx_attest");
MODULE_LICENSE("GPL");
