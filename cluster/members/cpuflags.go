package members

// userFlags are the x86 CPU flags (as /proc/cpuinfo names them) of
// instructions and state that a process can use without the kernel: a
// process restored on a CPU without one of them may fault. CanTake compares
// only these. The rest of the flags line is the kernel's own view and
// changes with the kernel, not the CPU: 6.12 lists `xtopology` (a Linux-
// defined flag) where 6.1 on the same virtual CPU does not, and the strict
// comparison refused every move from 6.12 to 6.1 (issue 20, item 3).
// Flags of other architectures ("Features" on arm64) are all compared.
var userFlags = setOf(
	// base and x86-64
	"fpu", "tsc", "cx8", "sep", "cmov", "clflush", "mmx", "fxsr", "sse", "sse2",
	"syscall", "mmxext", "fxsr_opt", "rdtscp", "lm", "3dnowext", "3dnow",
	"pni", "pclmulqdq", "ssse3", "fma", "cx16", "sse4_1", "sse4_2", "movbe",
	"popcnt", "aes", "xsave", "avx", "f16c", "rdrand", "lahf_lm", "abm",
	"sse4a", "misalignsse", "3dnowprefetch", "xop", "fma4", "tbm",
	// leaf 7 and later
	"fsgsbase", "bmi1", "hle", "avx2", "bmi2", "erms", "rtm", "mpx",
	"avx512f", "avx512dq", "rdseed", "adx", "avx512ifma", "clflushopt", "clwb",
	"avx512pf", "avx512er", "avx512cd", "sha_ni", "avx512bw", "avx512vl",
	"xsaveopt", "xsavec", "xgetbv1", "xsaves", "avx512vbmi", "pku", "ospke",
	"waitpkg", "avx512_vbmi2", "gfni", "vaes", "vpclmulqdq", "avx512_vnni",
	"avx512_bitalg", "avx512_vpopcntdq", "rdpid", "movdiri", "movdir64b",
	"enqcmd", "fsrm", "avx512_vp2intersect", "serialize", "tsxldtrk",
	"amx_bf16", "avx512_fp16", "amx_tile", "amx_int8", "avx_vnni",
	"avx512_bf16", "cldemote", "wbnoinvd", "clzero", "rdpru", "sha512", "sm3",
	"sm4", "avx_ifma", "avx_vnni_int8", "avx_ne_convert", "cmpccxadd",
	"prefetchiti", "fzrm", "fsrs", "fsrc", "user_shstk", "avx10",
)

func setOf(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// usedFlags are the flags of source that a process may use: on x86 those
// in userFlags, elsewhere all.
func usedFlags(arch string, flags []string) []string {
	if arch != "amd64" && arch != "386" {
		return flags
	}
	var out []string
	for _, f := range flags {
		if userFlags[f] {
			out = append(out, f)
		}
	}
	return out
}
