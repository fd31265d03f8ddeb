/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Bringing up an SEV VM: its type, its SEV context, its encrypted regions. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>

#include "../abi/compat.h"
#include "../core/error.h"
#include "../core/names.h"
#include "../core/opts.h"
#include "../core/seam.h"
#include "cmd.h"

static const char *type_name(enum sevm_sev_type t)
{
	return t == SEVM_SEV ? "SEV" : t == SEVM_SEV_ES ? "SEV-ES" : NULL;
}

static int init_args(enum sevm_sev_type type, const struct sevm_sev_init_opts *opts,
		     struct sevm_sev_init_opts *o)
{
	memset(o, 0, sizeof(*o));
	if (!type_name(type))
		return sevm__fail(-EINVAL, "SEV type %d is neither SEVM_SEV nor SEVM_SEV_ES", (int)type);
	if (opts) {
		int err = SEVM_OPTS_CHECK(opts, "sevm_sev_init_opts");

		if (err)
			return err;
		memcpy(o, opts, opts->sz < sizeof(*o) ? opts->sz : sizeof(*o));
	}
	return 0;
}

/*
 * KVM_SEV_INIT2 (v6.10) takes the VMSA features and GHCB version on a VM of
 * the SEV type; the legacy KVM_SEV_INIT / KVM_SEV_ES_INIT take nothing and
 * need a default-type VM (__sev_guest_init, sev_guest_init2).
 */
static int init(int vm_fd, enum sevm_sev_type type, const struct sevm_sev_init_opts *o,
		uint32_t *fw_error)
{
	struct sevm_abi_sev_init args = { .vmsa_features = o->vmsa_features,
					  .ghcb_version = o->ghcb_version };

	if (o->legacy)
		return sevm__sev_cmd(vm_fd, type == SEVM_SEV ? SEVM_ABI_SEV_INIT : SEVM_ABI_SEV_ES_INIT,
				     NULL, -1, fw_error);
	return sevm__sev_cmd(vm_fd, SEVM_ABI_SEV_INIT2, &args, -1, fw_error);
}

int sevm_sev_init(int vm_fd, enum sevm_sev_type type, const struct sevm_sev_init_opts *opts,
		  uint32_t *fw_error)
{
	struct sevm_sev_init_opts o;
	int err = init_args(type, opts, &o);

	if (fw_error)
		*fw_error = 0;
	return err ? err : init(vm_fd, type, &o, fw_error);
}

int sevm_sev_vm_create(enum sevm_sev_type type, const struct sevm_sev_init_opts *opts,
		       uint32_t *fw_error)
{
	struct sevm_sev_init_opts o;
	int kvm, vm, err = init_args(type, opts, &o);

	if (fw_error)
		*fw_error = 0;
	if (err)
		return err;
	kvm = sevm__open("/dev/kvm", O_RDWR);
	if (kvm < 0)
		return kvm;
	vm = sevm__ioctl(kvm, KVM_CREATE_VM, (void *)(uintptr_t)(o.legacy ? KVM_X86_DEFAULT_VM : type));
	sevm__close(kvm);
	if (vm == -EINVAL && !o.legacy)
		return sevm__fail(vm, "KVM_CREATE_VM: this kernel has no %s VM type "
				  "(before Linux 6.10, or SEV off: try the legacy init)", type_name(type));
	if (vm < 0)
		return sevm__context(vm, "creating the %s VM", type_name(type));
	err = init(vm, type, &o, fw_error);
	if (err) {
		sevm__close(vm);
		return err;
	}
	return vm;
}

static int region(int vm_fd, unsigned long req, void *addr, uint64_t size)
{
	struct kvm_enc_region r = { .addr = (uintptr_t)addr, .size = size };
	int err;

	if (!addr || !size)
		return sevm__fail(-EINVAL, "encrypted region %p + %llu", addr, (unsigned long long)size);
	err = sevm__ioctl_quiet(vm_fd, req, &r);
	switch (err) {
	case 0:
		return 0;
	case -ENOTTY:
		return sevm__fail(err, "%s: the VM is not an SEV guest (never initialised, or its "
				  "context was moved away)", sevm__ioctl_name(req));
	case -ENOMEM:
		/* sev_pin_memory(): over RLIMIT_MEMLOCK without CAP_IPC_LOCK, or pinning failed. */
		return sevm__fail(err, "%s: cannot pin %llu bytes (RLIMIT_MEMLOCK without "
				  "CAP_IPC_LOCK?)", sevm__ioctl_name(req), (unsigned long long)size);
	case -EINVAL:
		return sevm__fail(err, "%s: the VM is a mirror, or %s", sevm__ioctl_name(req),
				  req == KVM_MEMORY_ENCRYPT_REG_REGION ? "the range is invalid" :
				  "no region with exactly this address and size is registered");
	default:
		return sevm__fail(err, "%s", sevm__ioctl_name(req));
	}
}

int sevm_sev_region_register(int vm_fd, void *addr, uint64_t size)
{
	return region(vm_fd, KVM_MEMORY_ENCRYPT_REG_REGION, addr, size);
}

int sevm_sev_region_unregister(int vm_fd, void *addr, uint64_t size)
{
	return region(vm_fd, KVM_MEMORY_ENCRYPT_UNREG_REGION, addr, size);
}
