/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The raw-ioctl floor (see raw-floor.h).  Deliberately bare: no sections,
 * no checksums, no commit protocol, one fixed array of the kernel's own
 * structs.  Everything that does not depend on the guest's state happens
 * before the pause, as it must in any implementation that wants a flat
 * blackout: the new VM, its vCPUs and their CPUID, the memory slot, the
 * parked threads, the MSR list, the buffers.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "raw-floor.h"
#include "sockio.h"
#include "sys.h"

#define HELLO_MAGIC	0x52415748u	/* "RAWH" */
#define STATE_MAGIC	0x52415753u	/* "RAWS" */
#define NR_CHIPS	3		/* KVM_IRQCHIP_PIC_MASTER, _PIC_SLAVE, _IOAPIC */

/* struct kvm_msrs and struct kvm_xsave end in flexible arrays: these are the same with room. */
struct raw_msrs {
	uint32_t nmsrs, pad;
	struct kvm_msr_entry entries[RAW_FLOOR_MAX_MSRS];
};
_Static_assert(offsetof(struct raw_msrs, entries) == offsetof(struct kvm_msrs, entries),
	       "kvm_msrs layout");

struct raw_xsave {
	uint32_t region[1024];
};
_Static_assert(sizeof(struct raw_xsave) == offsetof(struct kvm_xsave, extra), "kvm_xsave layout");

struct raw_vcpu {
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct raw_xsave xsave;
	struct kvm_xcrs xcrs;
	struct kvm_lapic_state lapic;
	struct kvm_vcpu_events events;
	struct kvm_debugregs debugregs;
	struct kvm_mp_state mp_state;
	uint32_t last_beat;	/* the VMM's device state: where its heartbeat check stands */
	struct raw_msrs msrs;
};

struct raw_vm {
	struct kvm_clock_data clock;
	struct kvm_irqchip chip[NR_CHIPS];
	struct kvm_pit_state2 pit;
};

/* The whole blackout payload: this, then nr_vcpus struct raw_vcpu. */
struct raw_head {
	uint32_t magic;
	uint32_t nr_vcpus;
	uint64_t pause_ns, paused_ns, captured_ns;
	struct raw_vm vm;
};

struct raw_hello {
	uint32_t magic;
	uint32_t nr_vcpus;
	uint32_t flags;		/* TINYVM_F_PIT */
	uint32_t nr_msrs;
	uint64_t mem_size;
};

static int fail(const char *what, int err)
{
	fprintf(stderr, "raw-floor: %s: %s\n", what, strerror(-err));
	return err;
}

static int xioctl(int fd, unsigned long req, void *arg, const char *what)
{
	return ioctl(fd, req, arg) < 0 ? fail(what, neg_errno()) : 0;
}

static size_t state_len(uint32_t nr_vcpus)
{
	return sizeof(struct raw_head) + (size_t)nr_vcpus * sizeof(struct raw_vcpu);
}

static struct raw_vcpu *vcpu_at(void *state, uint32_t i)
{
	return (struct raw_vcpu *)((char *)state + sizeof(struct raw_head)) + i;
}

/* ---- Old VMM ------------------------------------------------------------- */

/* KVM_GET_MSR_INDEX_LIST answers E2BIG with the count it needs. */
static int msr_index_list(int kvm_fd, struct kvm_msr_list **out)
{
	struct kvm_msr_list head = { .nmsrs = 0 }, *list;

	if (ioctl(kvm_fd, KVM_GET_MSR_INDEX_LIST, &head) < 0 && errno != E2BIG)
		return fail("KVM_GET_MSR_INDEX_LIST", neg_errno());
	list = calloc(1, sizeof(*list) + head.nmsrs * sizeof(list->indices[0]));
	if (!list)
		return -ENOMEM;
	list->nmsrs = head.nmsrs;
	if (head.nmsrs && ioctl(kvm_fd, KVM_GET_MSR_INDEX_LIST, list) < 0) {
		int err = neg_errno();

		free(list);
		return fail("KVM_GET_MSR_INDEX_LIST", err);
	}
	*out = list;
	return 0;
}

/* The kernel lists MSRs it cannot read for this vCPU; only those that read back travel. */
static int filter_msrs(struct raw_floor_old *o)
{
	struct kvm_msr_list *list = NULL;
	int err = msr_index_list(o->vm->kvm_fd, &list);

	if (err)
		return err;
	o->nr_msrs = 0;
	for (uint32_t i = 0; i < list->nmsrs && o->nr_msrs < RAW_FLOOR_MAX_MSRS; i++) {
		struct raw_msrs one = { .nmsrs = 1, .entries[0].index = list->indices[i] };

		if (ioctl(o->vm->vcpus[0].fd, KVM_GET_MSRS, &one) == 1)
			o->msrs[o->nr_msrs++] = list->indices[i];
	}
	free(list);
	return 0;
}

int raw_floor_old_init(struct raw_floor_old *o, struct tinyvm *vm, int sock)
{
	int xsave = ioctl(vm->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);
	int err;

	memset(o, 0, sizeof(*o));
	o->vm = vm;
	o->sock = sock;
	/* Past 4 KiB (AMX) KVM_GET_XSAVE refuses; the floor keeps its fixed structs. */
	if (xsave > (int)sizeof(struct raw_xsave)) {
		fprintf(stderr, "raw-floor: XSAVE state of %d bytes; only 4 KiB is handled\n", xsave);
		return -EOPNOTSUPP;
	}
	err = filter_msrs(o);
	if (err)
		return err;
	o->state_len = state_len(vm->nr_vcpus);
	o->state = calloc(1, o->state_len);
	return o->state ? 0 : -ENOMEM;
}

int raw_floor_offer(struct raw_floor_old *o)
{
	struct raw_hello hello = {
		.magic = HELLO_MAGIC, .nr_vcpus = o->vm->nr_vcpus, .nr_msrs = o->nr_msrs,
		.flags = o->vm->flags & TINYVM_F_PIT, .mem_size = o->vm->mem_size,
	};
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { .iov_base = &hello, .iov_len = sizeof(hello) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
			     .msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	int32_t ready;
	ssize_t n;
	int err;

	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &o->vm->mem_fd, sizeof(int));
	n = sendmsg(o->sock, &mh, MSG_NOSIGNAL);
	if (n != (ssize_t)sizeof(hello))
		return fail("send HELLO", n < 0 ? neg_errno() : -EIO);
	err = read_all(o->sock, &ready, sizeof(ready));
	if (err)
		return fail("waiting for READY", err);
	return ready ? fail("the new VMM could not get ready", ready) : 0;
}

static int capture_vcpu(const struct raw_floor_old *o, const struct tinyvm_vcpu *v,
			struct raw_vcpu *s)
{
	int fd = v->fd, r;

	s->last_beat = v->last_beat;
	r = xioctl(fd, KVM_GET_REGS, &s->regs, "KVM_GET_REGS");
	r = r ? r : xioctl(fd, KVM_GET_SREGS, &s->sregs, "KVM_GET_SREGS");
	r = r ? r : xioctl(fd, KVM_GET_XSAVE, &s->xsave, "KVM_GET_XSAVE");
	r = r ? r : xioctl(fd, KVM_GET_XCRS, &s->xcrs, "KVM_GET_XCRS");
	r = r ? r : xioctl(fd, KVM_GET_LAPIC, &s->lapic, "KVM_GET_LAPIC");
	if (r)
		return r;
	s->msrs.nmsrs = o->nr_msrs;
	for (uint32_t i = 0; i < o->nr_msrs; i++)
		s->msrs.entries[i] = (struct kvm_msr_entry){ .index = o->msrs[i] };
	r = ioctl(fd, KVM_GET_MSRS, &s->msrs);
	if (r != (int)o->nr_msrs)
		return fail("KVM_GET_MSRS read fewer than the filtered list",
			    r < 0 ? neg_errno() : -EIO);
	r = xioctl(fd, KVM_GET_VCPU_EVENTS, &s->events, "KVM_GET_VCPU_EVENTS");
	r = r ? r : xioctl(fd, KVM_GET_DEBUGREGS, &s->debugregs, "KVM_GET_DEBUGREGS");
	return r ? r : xioctl(fd, KVM_GET_MP_STATE, &s->mp_state, "KVM_GET_MP_STATE");
}

static int capture_vm(int vm_fd, struct raw_vm *s)
{
	int r = xioctl(vm_fd, KVM_GET_CLOCK, &s->clock, "KVM_GET_CLOCK");

	for (uint32_t chip = 0; !r && chip < NR_CHIPS; chip++) {
		s->chip[chip].chip_id = chip;
		r = xioctl(vm_fd, KVM_GET_IRQCHIP, &s->chip[chip], "KVM_GET_IRQCHIP");
	}
	return r ? r : xioctl(vm_fd, KVM_GET_PIT2, &s->pit, "KVM_GET_PIT2");
}

int raw_floor_send(struct raw_floor_old *o, struct raw_floor_times *t)
{
	struct raw_head *head = o->state;
	int err;

	t->pause_ns = now_ns();
	err = tinyvm_pause(o->vm);
	if (err)
		return fail("tinyvm_pause", err);
	t->paused_ns = now_ns();
	for (uint32_t i = 0; !err && i < o->vm->nr_vcpus; i++)
		err = capture_vcpu(o, &o->vm->vcpus[i], vcpu_at(o->state, i));
	if (!err)
		err = capture_vm(o->vm->vm_fd, &head->vm);
	if (err)
		return err;
	t->captured_ns = now_ns();
	*head = (struct raw_head){ .magic = STATE_MAGIC, .nr_vcpus = o->vm->nr_vcpus,
				   .pause_ns = t->pause_ns, .paused_ns = t->paused_ns,
				   .captured_ns = t->captured_ns, .vm = head->vm };
	err = write_all(o->sock, o->state, o->state_len);
	return err ? fail("send state", err) : 0;
}

void raw_floor_old_free(struct raw_floor_old *o)
{
	free(o->state);
	memset(o, 0, sizeof(*o));
}

/* ---- New VMM ------------------------------------------------------------- */

static int recv_hello(int sock, struct raw_hello *hello, int *mem_fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { .iov_base = hello, .iov_len = sizeof(*hello) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
			     .msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf) };
	struct cmsghdr *c;
	ssize_t n;

	*mem_fd = -1;
	n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | MSG_WAITALL);
	if (n < 0)
		return fail("receive HELLO", neg_errno());
	c = CMSG_FIRSTHDR(&mh);
	if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
	    c->cmsg_len == CMSG_LEN(sizeof(int)))
		memcpy(mem_fd, CMSG_DATA(c), sizeof(int));
	if (n == (ssize_t)sizeof(*hello) && *mem_fd >= 0 && hello->magic == HELLO_MAGIC &&
	    hello->nr_vcpus && hello->nr_vcpus <= TINYVM_MAX_VCPUS &&
	    hello->nr_msrs <= RAW_FLOOR_MAX_MSRS)
		return 0;
	if (*mem_fd >= 0)
		close(*mem_fd);
	return fail("HELLO", n ? -EPROTO : -ECONNRESET);
}

/* Everything before the pause: the VM on the old VMM's memory, threads parked. */
static int build(int sock, struct tinyvm *vm, void **state, size_t *len)
{
	struct raw_hello hello;
	int mem_fd, err = recv_hello(sock, &hello, &mem_fd);

	if (err)
		return err;
	err = tinyvm_create_shell(vm, hello.nr_vcpus, mem_fd, hello.mem_size,
				  hello.flags & TINYVM_F_PIT);
	if (err) {
		close(mem_fd);
		return fail("tinyvm_create_shell", err);
	}
	vm->owns_mem_fd = true;
	err = tinyvm_start_paused(vm);
	if (err)
		return fail("tinyvm_start_paused", err);
	*len = state_len(hello.nr_vcpus);
	*state = calloc(1, *len);
	return *state ? 0 : -ENOMEM;
}

/*
 * The notes' order: SREGS, REGS, XSAVE, XCRS, LAPIC before MSRS, then
 * events, debugregs, MP state.
 */
static int restore_vcpu(int fd, const struct raw_vcpu *s)
{
	int r = xioctl(fd, KVM_SET_SREGS, (void *)&s->sregs, "KVM_SET_SREGS");

	r = r ? r : xioctl(fd, KVM_SET_REGS, (void *)&s->regs, "KVM_SET_REGS");
	r = r ? r : xioctl(fd, KVM_SET_XSAVE, (void *)&s->xsave, "KVM_SET_XSAVE");
	r = r ? r : xioctl(fd, KVM_SET_XCRS, (void *)&s->xcrs, "KVM_SET_XCRS");
	r = r ? r : xioctl(fd, KVM_SET_LAPIC, (void *)&s->lapic, "KVM_SET_LAPIC");
	if (r)
		return r;
	/* It returns how many it set and stops at the first it refuses. */
	r = ioctl(fd, KVM_SET_MSRS, (void *)&s->msrs);
	if (r != (int)s->msrs.nmsrs) {
		if (r >= 0 && (uint32_t)r < s->msrs.nmsrs)
			fprintf(stderr, "raw-floor: KVM_SET_MSRS stopped at MSR 0x%x\n",
				s->msrs.entries[r].index);
		return fail("KVM_SET_MSRS", r < 0 ? neg_errno() : -EIO);
	}
	r = xioctl(fd, KVM_SET_VCPU_EVENTS, (void *)&s->events, "KVM_SET_VCPU_EVENTS");
	r = r ? r : xioctl(fd, KVM_SET_DEBUGREGS, (void *)&s->debugregs, "KVM_SET_DEBUGREGS");
	return r ? r : xioctl(fd, KVM_SET_MP_STATE, (void *)&s->mp_state, "KVM_SET_MP_STATE");
}

/* Last, just before the first KVM_RUN: the irqchip, the PIT, then the clock. */
static int restore_vm(int vm_fd, const struct raw_vm *s, unsigned int flags)
{
	struct kvm_clock_data clock = s->clock;
	int r = 0;

	for (uint32_t chip = 0; !r && chip < NR_CHIPS; chip++)
		r = xioctl(vm_fd, KVM_SET_IRQCHIP, (void *)&s->chip[chip], "KVM_SET_IRQCHIP");
	if (!r && (flags & TINYVM_F_PIT))
		r = xioctl(vm_fd, KVM_SET_PIT2, (void *)&s->pit, "KVM_SET_PIT2");
	if (r)
		return r;
	/* TSC_STABLE and HOST_TSC are outputs; REALTIME adds the time the guest was away. */
	clock.flags &= KVM_CLOCK_REALTIME;
	return xioctl(vm_fd, KVM_SET_CLOCK, &clock, "KVM_SET_CLOCK");
}

static int restore(struct tinyvm *vm, void *state)
{
	const struct raw_head *head = state;
	uint32_t beats[TINYVM_MAX_VCPUS];
	int err = 0;

	if (head->magic != STATE_MAGIC || head->nr_vcpus != vm->nr_vcpus)
		return fail("state array", -EPROTO);
	for (uint32_t i = 0; !err && i < vm->nr_vcpus; i++) {
		err = restore_vcpu(vm->vcpus[i].fd, vcpu_at(state, i));
		beats[i] = vcpu_at(state, i)->last_beat;
	}
	if (!err)
		err = restore_vm(vm->vm_fd, &head->vm, vm->flags);
	if (!err)
		tinyvm_expect_continuation(vm, beats);
	return err;
}

static int take_state(int sock, struct tinyvm *vm, void *state, size_t len,
		      struct raw_floor_times *t)
{
	const struct raw_head *head = state;
	int err = read_all(sock, state, len);

	if (err)
		return fail("receive state", err);
	t->received_ns = now_ns();
	t->pause_ns = head->pause_ns;
	t->paused_ns = head->paused_ns;
	t->captured_ns = head->captured_ns;
	err = restore(vm, state);
	if (err)
		return err;
	t->restored_ns = now_ns();
	err = tinyvm_resume(vm);
	t->resumed_ns = now_ns();
	return err ? fail("tinyvm_resume", err) : 0;
}

int raw_floor_receive(int sock, struct tinyvm *vm, void (*ready_hook)(void),
		      struct raw_floor_times *t)
{
	void *state = NULL;
	size_t len = 0;
	int err = build(sock, vm, &state, &len);
	int32_t ready = err;

	if (ready_hook)
		ready_hook();
	/* Tell the old VMM either way, so that it does not pause for nothing. */
	if (write_all(sock, &ready, sizeof(ready)) && !err)
		err = fail("send READY", -EPIPE);
	if (!err)
		err = take_state(sock, vm, state, len, t);
	free(state);
	return err;
}
