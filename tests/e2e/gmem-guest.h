/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The guest of the guest_memfd handoff test, shared by the old VMM
 * (test-gmem-handoff) and the new one (gmem-peer): a real-mode program in a
 * guest_memfd.  It writes a pattern once (2048 words, word i = i ^ 0x5a5a,
 * at GMEM_PATTERN_GPA), says so on port GMEM_PORT_WRITTEN, then loops for
 * ever: sum the pattern's words, report the sum on GMEM_PORT_SUM.  After the
 * handoff, every sum the new VMM sees was read from the handed-over memory.
 */
#ifndef GMEM_GUEST_H
#define GMEM_GUEST_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <linux/kvm.h>

#define GMEM_RAM_SIZE		(1u << 20)
#define GMEM_CODE_GPA		0x1000
#define GMEM_PATTERN_GPA	0x4000
#define GMEM_PATTERN_WORDS	2048
#define GMEM_PORT_SUM		0x10	/* out eax: the sum */
#define GMEM_PORT_WRITTEN	0x11	/* out al: the pattern is written */

static const uint8_t gmem_guest_code[] = {
	0xbf, 0x00, 0x40,		/* 00: mov  di, 0x4000                 */
	0xb9, 0x00, 0x08,		/* 03: mov  cx, 2048                   */
	0x31, 0xdb,			/* 06: xor  bx, bx                     */
	0x89, 0xd8,			/* 08: mov  ax, bx                     */
	0x35, 0x5a, 0x5a,		/* 0a: xor  ax, 0x5a5a                 */
	0x89, 0x05,			/* 0d: mov  [di], ax                   */
	0x83, 0xc7, 0x02,		/* 0f: add  di, 2                      */
	0x43,				/* 12: inc  bx                         */
	0xe2, 0xf3,			/* 13: loop 08                         */
	0xb0, 0x01,			/* 15: mov  al, 1                      */
	0xe6, 0x11,			/* 17: out  0x11, al  ; written        */
	0xbe, 0x00, 0x40,		/* 19: mov  si, 0x4000                 */
	0xb9, 0x00, 0x08,		/* 1c: mov  cx, 2048                   */
	0x66, 0x31, 0xd2,		/* 1f: xor  edx, edx                   */
	0x66, 0x0f, 0xb7, 0x04,		/* 22: movzx eax, word [si]            */
	0x66, 0x01, 0xc2,		/* 26: add  edx, eax                   */
	0x83, 0xc6, 0x02,		/* 29: add  si, 2                      */
	0xe2, 0xf4,			/* 2c: loop 22                         */
	0x66, 0x89, 0xd0,		/* 2e: mov  eax, edx                   */
	0x66, 0xe7, 0x10,		/* 31: out  0x10, eax ; the sum        */
	0xeb, 0xe3,			/* 34: jmp  19                         */
};

static inline uint32_t gmem_pattern_sum(void)
{
	uint32_t sum = 0;

	for (uint32_t i = 0; i < GMEM_PATTERN_WORDS; i++)
		sum += (i ^ 0x5a5a) & 0xffff;
	return sum;
}

/*
 * KVM_RUN until a port-I/O exit; its port, and for GMEM_PORT_SUM the value
 * in *value.  -1 on any other exit or a failed ioctl.
 */
static inline int gmem_run_to_io(int vcpu_fd, struct kvm_run *run, uint32_t *value)
{
	if (ioctl(vcpu_fd, KVM_RUN, 0) < 0 || run->exit_reason != KVM_EXIT_IO ||
	    run->io.direction != KVM_EXIT_IO_OUT)
		return -1;
	*value = 0;
	memcpy(value, (const uint8_t *)run + run->io.data_offset,
	       run->io.size < 4 ? run->io.size : 4);
	return run->io.port;
}

/* vCPU 0 of vm with the supported CPUID, its kvm_run mapped; -1 on failure. */
static inline int gmem_vcpu_create(int kvm_fd, int vm_fd, struct kvm_run **run)
{
	int n = 256, fd = ioctl(vm_fd, KVM_CREATE_VCPU, 0);
	long size = ioctl(kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(c->entries[0]));

	if (fd < 0 || size <= 0 || !c)
		goto fail;
	c->nent = n;
	if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, c) < 0 || ioctl(fd, KVM_SET_CPUID2, c) < 0)
		goto fail;
	*run = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (*run == MAP_FAILED)
		goto fail;
	free(c);
	return fd;
fail:
	free(c);
	if (fd >= 0)
		close(fd);
	return -1;
}

#endif
