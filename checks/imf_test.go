package checks

import (
	"context"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// imfAsset is one file of a test package.
type imfAsset struct {
	id, path string
	data     []byte
	// listedHash and listedSize, when set, are what the PKL claims instead of the truth.
	listedHash string
	listedSize int64
	notInPKL   bool
}

// writeIMF writes an IMF-shaped package into dir: the assets, a CPL referencing the track
// files (and refs), a PKL listing them with their SHA-1 and size, and ASSETMAP.xml (with
// mapPath overriding paths by asset id). It returns the CPL's id.
func writeIMF(t *testing.T, dir string, assets []imfAsset, refs []string, mapPath map[string]string) string {
	t.Helper()
	var cplRefs strings.Builder
	for _, a := range assets {
		if strings.HasSuffix(a.path, ".mxf") {
			fmt.Fprintf(&cplRefs, "<Resource><TrackFileId>%s</TrackFileId></Resource>", a.id)
		}
	}
	for _, r := range refs {
		fmt.Fprintf(&cplRefs, "<Resource><TrackFileId>%s</TrackFileId></Resource>", r)
	}
	cplID := "urn:uuid:0c1d0000-0000-4000-8000-00000000c001"
	cpl := fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>
<CompositionPlaylist xmlns="http://www.smpte-ra.org/schemas/2067-3/2016">
  <Id>%s</Id><ContentTitle>WEDNESDAY_S01E03_FR</ContentTitle>
  <SegmentList><Segment><SequenceList><cc:MainImageSequence xmlns:cc="http://www.smpte-ra.org/schemas/2067-2/2016"><ResourceList>%s</ResourceList></cc:MainImageSequence></SequenceList></Segment></SegmentList>
</CompositionPlaylist>`, cplID, cplRefs.String())
	all := append([]imfAsset{{id: cplID, path: "CPL_wed.xml", data: []byte(cpl)}}, assets...)
	var pkl strings.Builder
	pkl.WriteString(`<?xml version="1.0" encoding="UTF-8"?><PackingList xmlns="http://www.smpte-ra.org/schemas/2067-2/2016/PKL"><Id>urn:uuid:pkl-1</Id><AssetList>`)
	for _, a := range all {
		p := filepath.Join(dir, filepath.FromSlash(a.path))
		if a.data != nil {
			os.MkdirAll(filepath.Dir(p), 0o755)
			if err := os.WriteFile(p, a.data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if a.notInPKL {
			continue
		}
		sum := sha1.Sum(a.data)
		h, size := base64.StdEncoding.EncodeToString(sum[:]), int64(len(a.data))
		if a.listedHash != "" {
			h = a.listedHash
		}
		if a.listedSize != 0 {
			size = a.listedSize
		}
		typ := "application/mxf"
		if strings.HasSuffix(a.path, ".xml") {
			typ = "text/xml"
		}
		fmt.Fprintf(&pkl, "<Asset><Id>%s</Id><Hash>%s</Hash><Size>%d</Size><Type>%s</Type><OriginalFileName>%s</OriginalFileName></Asset>", a.id, h, size, typ, filepath.Base(a.path))
	}
	pkl.WriteString("</AssetList></PackingList>")
	if err := os.WriteFile(filepath.Join(dir, "PKL_wed.xml"), []byte(pkl.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	var am strings.Builder
	am.WriteString(`<?xml version="1.0" encoding="UTF-8"?><AssetMap xmlns="http://www.smpte-ra.org/schemas/429-9/2007/AM"><Id>urn:uuid:am</Id><AssetList>`)
	am.WriteString(`<Asset><Id>urn:uuid:pkl-1</Id><PackingList>true</PackingList><ChunkList><Chunk><Path>PKL_wed.xml</Path></Chunk></ChunkList></Asset>`)
	for _, a := range all {
		p := a.path
		if mp, ok := mapPath[a.id]; ok {
			p = mp
		}
		fmt.Fprintf(&am, "<Asset><Id>%s</Id><ChunkList><Chunk><Path>%s</Path><VolumeIndex>1</VolumeIndex></Chunk></ChunkList></Asset>", a.id, p)
	}
	am.WriteString("</AssetList></AssetMap>")
	if err := os.WriteFile(filepath.Join(dir, "ASSETMAP.xml"), []byte(am.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return cplID
}

func mxf(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) ^ seed
	}
	return b
}

func TestCheckPackage(t *testing.T) {
	video := imfAsset{id: "urn:uuid:v1", path: "VIDEO_wed.mxf", data: mxf(3<<20, 1)}
	audio := imfAsset{id: "urn:uuid:a1", path: "audio/AUDIO_wed.mxf", data: mxf(100<<10, 2)}
	tests := []struct {
		name     string
		assets   []imfAsset
		refs     []string
		mapPath  map[string]string
		extra    map[string]string // files outside the asset map
		problems []string
		holdFile string
		warnings []string
	}{
		{name: "whole", assets: []imfAsset{video, audio}},
		{name: "an MXF re-rendered after the PKL was made", assets: []imfAsset{video, func() imfAsset { a := audio; a.listedHash = "AAAAAAAAAAAAAAAAAAAAAAAAAAA="; return a }()},
			problems: []string{"asset urn:uuid:a1 (audio/AUDIO_wed.mxf): SHA-1 is "}, holdFile: "audio/AUDIO_wed.mxf"},
		{name: "wrong size", assets: []imfAsset{func() imfAsset { v := video; v.listedSize = 12345; return v }(), audio},
			problems: []string{"asset urn:uuid:v1 (VIDEO_wed.mxf): size is 3145728 bytes but PKL_wed.xml says 12345"}, holdFile: "VIDEO_wed.mxf"},
		{name: "missing track file", assets: []imfAsset{video, {id: "urn:uuid:a1", path: "audio/AUDIO_wed.mxf"}},
			problems: []string{"asset urn:uuid:a1 (audio/AUDIO_wed.mxf): listed in PKL_wed.xml, but it is not there"}},
		{name: "CPL references a track file no PKL lists", assets: []imfAsset{video}, refs: []string{"urn:uuid:gone"},
			problems: []string{"asset urn:uuid:gone (CPL_wed.xml): the CPL references this track file"}, holdFile: "CPL_wed.xml"},
		{name: "file outside the asset map", assets: []imfAsset{video}, extra: map[string]string{"notes.txt": "hi"},
			warnings: []string{"notes.txt is in the package folder but not in ASSETMAP.xml"}},
		{name: "hostile asset map", assets: []imfAsset{video, audio}, mapPath: map[string]string{"urn:uuid:v1": "../outside.mxf", "urn:uuid:a1": "/etc/passwd"},
			problems: []string{`asset urn:uuid:v1 (ASSETMAP.xml): its path "../outside.mxf" leaves the package folder`, `asset urn:uuid:a1 (ASSETMAP.xml): its path "/etc/passwd" leaves`,
				"asset urn:uuid:v1 (PKL_wed.xml): the packing list names it (VIDEO_wed.mxf) but ASSETMAP.xml gives no path",
				"asset urn:uuid:a1 (PKL_wed.xml): the packing list names it (AUDIO_wed.mxf) but ASSETMAP.xml gives no path"}, holdFile: "ASSETMAP.xml",
			warnings: []string{"VIDEO_wed.mxf is in the package folder but not in ASSETMAP.xml", "audio/AUDIO_wed.mxf is in the package folder but not in ASSETMAP.xml"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			dir := filepath.Join(root, "pkg")
			os.Mkdir(dir, 0o755)
			// What a hostile path would reach, were it followed: same content as the video.
			os.WriteFile(filepath.Join(root, "outside.mxf"), video.data, 0o644)
			cplID := writeIMF(t, dir, tt.assets, tt.refs, tt.mapPath)
			files := []string{"ASSETMAP.xml", "PKL_wed.xml", "CPL_wed.xml"}
			for _, a := range tt.assets {
				files = append(files, a.path)
			}
			for n, c := range tt.extra {
				os.WriteFile(filepath.Join(dir, n), []byte(c), 0o644)
				files = append(files, n)
			}
			res, err := CheckPackage(context.Background(), PackageInput{Folder: dir, Root: root, Files: files})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Problems) != len(tt.problems) {
				t.Fatalf("problems = %q, want %d: %q", res.Problems, len(tt.problems), tt.problems)
			}
			for i, p := range res.Problems {
				if !strings.HasPrefix(p.String(), tt.problems[i]) {
					t.Errorf("problem %d = %q, want it to start %q", i, p, tt.problems[i])
				}
			}
			if tt.holdFile != "" && res.HoldFile != tt.holdFile {
				t.Errorf("HoldFile = %q, want %q", res.HoldFile, tt.holdFile)
			}
			if strings.Join(res.Warnings, "|") != strings.Join(tt.warnings, "|") {
				t.Errorf("warnings = %q, want %q", res.Warnings, tt.warnings)
			}
			if len(tt.problems) == 0 {
				if len(res.Compositions) != 1 || res.Compositions[0].ID != cplID || res.Compositions[0].Title != "WEDNESDAY_S01E03_FR" || res.Message() != "" {
					t.Errorf("compositions = %+v, message %q", res.Compositions, res.Message())
				}
			} else if !strings.HasPrefix(res.Message(), "the IMF package disagrees with its own packing list: ") {
				t.Errorf("message = %q", res.Message())
			}
		})
	}
}

func TestCheckPackageNeverFollowsLinks(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "pkg")
	os.Mkdir(dir, 0o755)
	video := imfAsset{id: "urn:uuid:v1", path: "VIDEO_wed.mxf", data: mxf(1000, 1)}
	writeIMF(t, dir, []imfAsset{video}, nil, nil)
	// The MXF is swapped for a link to a file with the very same content outside: refused.
	outside := filepath.Join(root, "elsewhere.mxf")
	os.WriteFile(outside, video.data, 0o644)
	os.Remove(filepath.Join(dir, "VIDEO_wed.mxf"))
	if err := os.Symlink(outside, filepath.Join(dir, "VIDEO_wed.mxf")); err != nil {
		t.Fatal(err)
	}
	res, err := CheckPackage(context.Background(), PackageInput{Folder: dir, Root: root})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Problems) != 1 || !strings.Contains(res.Problems[0].String(), "link") {
		t.Errorf("problems = %q; want the link refused", res.Problems)
	}
	// No ASSETMAP at all.
	os.Remove(filepath.Join(dir, "ASSETMAP.xml"))
	res, _ = CheckPackage(context.Background(), PackageInput{Folder: dir, Root: root})
	if !strings.Contains(res.Message(), "there is no ASSETMAP.xml") {
		t.Errorf("message = %q", res.Message())
	}
}

// FuzzAssetMap: no ASSETMAP.xml makes the check panic or open anything outside the package.
func FuzzAssetMap(f *testing.F) {
	for _, s := range []string{
		`<AssetMap><AssetList><Asset><Id>x</Id><PackingList>true</PackingList><ChunkList><Chunk><Path>../../etc/passwd</Path></Chunk></ChunkList></Asset></AssetList></AssetMap>`,
		`<AssetMap>` + strings.Repeat("<AssetList>", 400) + `</AssetMap>`,
		`<AssetMap><AssetList>` + strings.Repeat(`<Asset><Id>a</Id><ChunkList><Chunk><Path>p</Path></Chunk><Chunk><Path>q</Path></Chunk></ChunkList></Asset>`, 500) + `</AssetList></AssetMap>`,
		`<?xml version="1.0" encoding="UTF-16"?><AssetMap/>`,
		`<AssetMap><AssetList><Asset><Id>x</Id><PackingList>true</PackingList><ChunkList><Chunk><Path>file:///etc/passwd</Path></Chunk></ChunkList></Asset></AssetList></AssetMap>`,
		`<AssetMap><AssetList><Asset><Id>x</Id><PackingList>true</PackingList><ChunkList><Chunk><Path>ASSETMAP.xml</Path></Chunk></ChunkList></Asset></AssetList></AssetMap>`,
	} {
		f.Add([]byte(s))
	}
	root := f.TempDir()
	dir := filepath.Join(root, "pkg")
	os.Mkdir(dir, 0o755)
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(filepath.Join(dir, "ASSETMAP.xml"), data, 0o644); err != nil {
			t.Fatal(err)
		}
		res, err := CheckPackage(context.Background(), PackageInput{Folder: dir, Root: dir})
		if err != nil {
			return // a read error of the package's own file, not a crash
		}
		for _, p := range res.Problems {
			if strings.Contains(p.File, "..") {
				t.Fatalf("a problem names a file outside: %v", p)
			}
		}
	})
}

// TestPackagesInSubfolders: a vendor drops whole packages into the request's folder; each
// ASSETMAP.xml's folder is checked as its own package, and problems name files by their path
// inside the drop folder.
func TestPackagesInSubfolders(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "drop")
	ov, supp := filepath.Join(dir, "WED_OV"), filepath.Join(dir, "WED_SUPP")
	os.MkdirAll(ov, 0o755)
	os.MkdirAll(supp, 0o755)
	writeIMF(t, ov, []imfAsset{{id: "urn:uuid:v1", path: "VIDEO.mxf", data: mxf(5000, 1)}}, nil, nil)
	writeIMF(t, supp, []imfAsset{{id: "urn:uuid:a9", path: "AUDIO_DE.mxf", data: mxf(700, 3), listedSize: 699}}, nil, nil)
	files := []string{"notes.txt"}
	for _, d := range []string{"WED_OV", "WED_SUPP"} {
		for _, n := range []string{"ASSETMAP.xml", "PKL_wed.xml", "CPL_wed.xml"} {
			files = append(files, d+"/"+n)
		}
	}
	files = append(files, "WED_OV/VIDEO.mxf", "WED_SUPP/AUDIO_DE.mxf")
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("x"), 0o644)
	res, err := CheckPackage(context.Background(), PackageInput{Folder: dir, Root: root, Files: files})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Problems) != 1 || res.Problems[0].String() != "asset urn:uuid:a9 (WED_SUPP/AUDIO_DE.mxf): size is 700 bytes but PKL_wed.xml says 699" ||
		res.HoldFile != "WED_SUPP/AUDIO_DE.mxf" {
		t.Errorf("problems = %q, hold file %q", res.Problems, res.HoldFile)
	}
	if len(res.Compositions) != 2 || res.Assets != 4 {
		t.Errorf("compositions = %+v, assets %d; want both packages' CPLs and four assets", res.Compositions, res.Assets)
	}
	if strings.Join(res.Warnings, "|") != "notes.txt is in the package folder but not in ASSETMAP.xml" {
		t.Errorf("warnings = %q", res.Warnings)
	}
}
