package members

import "testing"

// FuzzCanTake: no facts a peer reports crash the check that decides
// whether it can take a container.
func FuzzCanTake(f *testing.F) {
	f.Add("amd64", "6.18.44-fc-v782", "4.2.1", "amd64", "6.1.0", "4.2")
	f.Add("", "", "", "arm64", "99999999999999999999999.1", "..1")
	f.Fuzz(func(t *testing.T, arch1, kernel1, criu1, arch2, kernel2, criu2 string) {
		src := Facts{Host: "a", Arch: arch1, Kernel: kernel1, CRIU: criu1, CPUFlags: []string{"sse2"}}
		dst := Facts{Host: "b", Arch: arch2, Kernel: kernel2, CRIU: criu2}
		CanTake(src, dst)
		CanTake(dst, src)
		if CanTake(src, src) != nil && src.Arch != "" && compareVersions(kernel1, kernel1) != 0 {
			t.Fatalf("%+v cannot take from itself", src)
		}
	})
}
