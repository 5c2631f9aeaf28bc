/*
 * The baseline: KVM's vmcs12 raw-encoding access (Linux 7.2.8 arch/x86/kvm/vmx/vmcs12.{h,c},
 * vmcs.h, include/linux/nospec.h, arch/x86/include/asm/barrier.h), written here from its facts:
 *
 * - the table holds the member offset of each encoding, 0 meaning absent, at index
 *   ROL16(encoding, 6); a 64-bit field's high half has its own entry at offset + 4;
 * - get_vmcs12_field_offset rejects encoding >> 15, bounds-checks the index against the table
 *   length, clamps it with array_index_nospec (x86: cmp; sbb) and rejects offset 0;
 * - vmcs12_read_any / vmcs12_write_any switch on the width, bits 14:13 (a high access is 32 bit).
 *
 * The timing loops are in this translation unit, so the lookup inlines into them as it does into
 * KVM's handle_vmread; each element passes through the same register-only black box as the Rust
 * loops use.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define ENOENT 2
#define ROL16(val, n) ((uint16_t)(((uint16_t)(val) << (n)) | ((uint16_t)(val) >> (16 - (n)))))
#define FIELD(number, offset) [ROL16(number, 6)] = (offset)
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define BLACK_BOX(x) __asm__ volatile("" : "+r"(x))

static const uint16_t vmcs12_field_offsets[] = {
#include "vmcs12_fields.h"
};
static const unsigned int nr_vmcs12_fields = ARRAY_SIZE(vmcs12_field_offsets);

enum vmcs_field_width {
	VMCS_FIELD_WIDTH_U16 = 0,
	VMCS_FIELD_WIDTH_U64 = 1,
	VMCS_FIELD_WIDTH_U32 = 2,
	VMCS_FIELD_WIDTH_NATURAL_WIDTH = 3
};

static inline int vmcs_field_width(unsigned long field)
{
	if (0x1 & field) /* the *_HIGH fields are all 32 bit */
		return VMCS_FIELD_WIDTH_U32;
	return (field >> 13) & 0x3;
}

/* ~0 if index < size, else 0, without a branch the CPU could speculate past. */
static inline unsigned long array_index_mask_nospec(unsigned long index, unsigned long size)
{
	unsigned long mask;

	__asm__ volatile("cmp %1,%2; sbb %0,%0;" : "=r"(mask) : "g"(size), "r"(index) : "cc");
	return mask;
}

#define array_index_nospec(index, size) ((index) & array_index_mask_nospec((index), (size)))

static inline short get_vmcs12_field_offset(unsigned long field)
{
	unsigned short offset;
	unsigned int index;

	if (field >> 15)
		return -ENOENT;
	index = ROL16(field, 6);
	if (index >= nr_vmcs12_fields)
		return -ENOENT;
	index = array_index_nospec(index, nr_vmcs12_fields);
	offset = vmcs12_field_offsets[index];
	if (offset == 0)
		return -ENOENT;
	return offset;
}

/* vmcs12 is packed: fields are read and written unaligned (memcpy of a constant size is one mov). */
static inline uint64_t vmcs12_read_any(const char *vmcs12, unsigned long field, uint16_t offset)
{
	const char *p = vmcs12 + offset;
	uint16_t v16;
	uint32_t v32;
	uint64_t v64;

	switch (vmcs_field_width(field)) {
	case VMCS_FIELD_WIDTH_NATURAL_WIDTH:
		memcpy(&v64, p, 8);
		return v64;
	case VMCS_FIELD_WIDTH_U16:
		memcpy(&v16, p, 2);
		return v16;
	case VMCS_FIELD_WIDTH_U32:
		memcpy(&v32, p, 4);
		return v32;
	case VMCS_FIELD_WIDTH_U64:
		memcpy(&v64, p, 8);
		return v64;
	default:
		return -1;
	}
}

static inline void vmcs12_write_any(char *vmcs12, unsigned long field, uint16_t offset, uint64_t value)
{
	char *p = vmcs12 + offset;
	uint16_t v16 = value;
	uint32_t v32 = value;

	switch (vmcs_field_width(field)) {
	case VMCS_FIELD_WIDTH_U16:
		memcpy(p, &v16, 2);
		break;
	case VMCS_FIELD_WIDTH_U32:
		memcpy(p, &v32, 4);
		break;
	case VMCS_FIELD_WIDTH_U64:
	case VMCS_FIELD_WIDTH_NATURAL_WIDTH:
		memcpy(p, &value, 8);
		break;
	}
}

/* One call each, for the agreement check: 0 or -ENOENT. */
int kvm_lookup(uint64_t field, uint16_t *offset, int *width)
{
	short r = get_vmcs12_field_offset(field);

	if (r < 0)
		return r;
	*offset = r;
	*width = vmcs_field_width(field);
	return 0;
}

int kvm_read_any(const char *vmcs12, uint64_t field, uint64_t *value)
{
	short r = get_vmcs12_field_offset(field);

	if (r < 0)
		return r;
	*value = vmcs12_read_any(vmcs12, field, r);
	return 0;
}

int kvm_write_any(char *vmcs12, uint64_t field, uint64_t value)
{
	short r = get_vmcs12_field_offset(field);

	if (r < 0)
		return r;
	vmcs12_write_any(vmcs12, field, r, value);
	return 0;
}

unsigned int kvm_table_len(void)
{
	return nr_vmcs12_fields;
}

/* The timing loops: the same shape as the Rust ones in src/lib.rs. */
void kvm_lookup_loop(const uint64_t *in, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned long field = in[i];
		uint64_t out;
		short offset;

		BLACK_BOX(field);
		offset = get_vmcs12_field_offset(field);
		out = offset < 0 ? UINT64_MAX : (uint64_t)offset | (uint64_t)vmcs_field_width(field) << 16;
		BLACK_BOX(out);
	}
}

void kvm_read_loop(const char *vmcs12, const uint64_t *in, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned long field = in[i];
		uint64_t out;
		short offset;

		BLACK_BOX(field);
		offset = get_vmcs12_field_offset(field);
		out = offset < 0 ? UINT64_MAX : vmcs12_read_any(vmcs12, field, offset);
		BLACK_BOX(out);
	}
}

void kvm_write_loop(char *vmcs12, const uint64_t *in, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned long field = in[i];
		uint64_t status;
		short offset;

		BLACK_BOX(field);
		offset = get_vmcs12_field_offset(field);
		if (offset >= 0)
			vmcs12_write_any(vmcs12, field, offset, field ^ 0x5a5a5a5a5a5a5a5aull);
		status = offset < 0;
		BLACK_BOX(status);
	}
}
