/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <string.h>

#include "../abi/compat.h"
#include "../core/error.h"
#include "../core/opts.h"
#include "../core/seam.h"
#include "../sev/dev.h"
#include "host.h"

static int64_t check_ext(int fd, long cap)
{
	return sevm__ioctl_quiet(fd, KVM_CHECK_EXTENSION, (void *)cap);
}

/*
 * Capabilities are asked of a VM of the default type where one can be made:
 * some answers depend on the VM (guest_memfd flags), and the VM-fd form is
 * the one a VMM will rely on.
 */
static void probe_kvm(struct sevm_probe_report *r)
{
	int kvm, vm, fd;

	kvm = sevm__open_quiet("/dev/kvm", O_RDWR);
	r->kvm_open_err = kvm < 0 ? kvm : 0;
	if (kvm < 0)
		return;
	r->kvm_api_version = sevm__ioctl_quiet(kvm, KVM_GET_API_VERSION, NULL);
	int64_t types = check_ext(kvm, KVM_CAP_VM_TYPES);
	r->vm_types = types > 0 ? (uint64_t)types : 1u << KVM_X86_DEFAULT_VM;

	vm = sevm__ioctl_quiet(kvm, KVM_CREATE_VM, (void *)(long)KVM_X86_DEFAULT_VM);
	fd = vm >= 0 ? vm : kvm;
	r->cap_move_enc_context = check_ext(fd, KVM_CAP_VM_MOVE_ENC_CONTEXT_FROM);
	r->cap_copy_enc_context = check_ext(fd, KVM_CAP_VM_COPY_ENC_CONTEXT_FROM);
	r->cap_guest_memfd = check_ext(fd, KVM_CAP_GUEST_MEMFD);
	r->cap_guest_memfd_flags = check_ext(fd, KVM_CAP_GUEST_MEMFD_FLAGS);
	r->cap_memory_attributes = check_ext(fd, KVM_CAP_MEMORY_ATTRIBUTES);
	r->cap_user_memory2 = check_ext(fd, KVM_CAP_USER_MEMORY2);
	r->cap_dirty_log_clear = check_ext(fd, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2);
	r->cap_exit_hypercall = check_ext(fd, KVM_CAP_EXIT_HYPERCALL);
	r->cap_max_vcpus = check_ext(fd, KVM_CAP_MAX_VCPUS);
	/*
	 * KVM_LINK_GUEST_MEMFD has no merged number and no capability to
	 * announce it; a guessed ioctl could hit another command, so no kernel
	 * is reported as having it until one can say so.
	 */
	r->gmem_link = false;
	sevm__close(vm);
	sevm__close(kvm);
}

/* PLATFORM_STATUS needs no write access (sev-dev.c), so a read-only open still reports it. */
static void probe_sev(struct sevm_probe_report *r)
{
	struct sev_user_data_status st;
	int fd;

	fd = sevm__open_quiet("/dev/sev", O_RDWR);
	r->sev_open_err = fd < 0 ? fd : 0;
	if (fd == -EACCES || fd == -EPERM)
		fd = sevm__open_quiet("/dev/sev", O_RDONLY);
	if (fd < 0) {
		r->sev_status_err = fd;
		return;
	}
	memset(&st, 0, sizeof(st));
	r->sev_status_err = sevm__sev_dev_cmd(fd, SEV_PLATFORM_STATUS, &st, &r->sev_fw_error);
	if (!r->sev_status_err) {
		r->sev_api_major = st.api_major;
		r->sev_api_minor = st.api_minor;
		r->sev_build = st.build;
		r->sev_state = st.state;
		r->sev_flags = st.flags;
		r->sev_guest_count = st.guest_count;
	}
	sevm__close(fd);
}

int sevm_probe(struct sevm_probe_report *report)
{
	struct sevm_probe_report r;
	int err = SEVM_OPTS_CHECK(report, "sevm_probe");

	if (err)
		return err;
	memset(&r, 0, sizeof(r));
	r.sz = sizeof(r);
	r.kvm_api_version = -1;
	r.cap_move_enc_context = r.cap_copy_enc_context = r.cap_guest_memfd = -1;
	r.cap_guest_memfd_flags = r.cap_memory_attributes = r.cap_user_memory2 = -1;
	r.cap_dirty_log_clear = r.cap_exit_hypercall = r.cap_max_vcpus = -1;
	probe_kvm(&r);
	probe_sev(&r);
	sevm__probe_kvm_amd(&r);
	sevm__probe_cgroup(&r);
	sevm__probe_privilege(&r);
	sevm__report_out(report, &r, sizeof(r));
	return 0;
}
