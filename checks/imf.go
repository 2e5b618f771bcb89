package checks

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hotdrop/hotdrop/internal/safefs"
)

// PackageInput is a folder to check as an IMF package.
type PackageInput struct {
	Folder string // absolute: the package's root, where ASSETMAP.xml is
	// Root is the folder every file is opened beneath without following a link (watch.root);
	// "" = Folder.
	Root string
	// Files are the names (slash, inside Folder) of the files the caller knows there, to warn
	// about those outside the asset map.
	Files []string
}

// Composition is one CPL: its id and title.
type Composition struct {
	ID, Title string
}

// PackageProblem is one way the package disagrees with itself.
type PackageProblem struct {
	Asset string // the asset's id (urn:uuid:…); "" for the package as a whole
	File  string // the file, inside the folder, that the problem is about
	Msg   string
}

func (p PackageProblem) String() string {
	switch {
	case p.Asset != "" && p.File != "":
		return fmt.Sprintf("asset %s (%s): %s", p.Asset, p.File, p.Msg)
	case p.File != "":
		return p.File + ": " + p.Msg
	}
	return p.Msg
}

// PackageResult is what CheckPackage found.
type PackageResult struct {
	Compositions []Composition
	Assets       int
	Problems     []PackageProblem
	Warnings     []string
	// HoldFile is the file the first problem is about, where the hold goes.
	HoldFile string
}

// Message is the hold's sentence, or "" when the package agrees with itself.
func (r PackageResult) Message() string {
	if len(r.Problems) == 0 {
		return ""
	}
	parts := make([]string, 0, len(r.Problems))
	for i, p := range r.Problems {
		if i == maxProblems {
			parts = append(parts, fmt.Sprintf("and %d more", len(r.Problems)-i))
			break
		}
		parts = append(parts, p.String())
	}
	return "the IMF package disagrees with its own packing list: " + strings.Join(parts, "; ")
}

// Summary is one line for people.
func (r PackageResult) Summary() string {
	if n := len(r.Problems); n > 0 {
		return fmt.Sprintf("%d way(s) the package disagrees with its own asset map and packing lists", n)
	}
	var titles []string
	for _, c := range r.Compositions {
		titles = append(titles, fmt.Sprintf("%q", c.Title))
	}
	return fmt.Sprintf("IMF package: %d asset(s) present with the sizes and hashes their packing lists give; CPL %s", r.Assets, strings.Join(titles, ", "))
}

// XML bounds for package documents: an asset map or a CPL of a long feature is a few MB.
const maxPackageXML = 32 << 20

// The package documents, as far as the check needs them. Names carry no namespace so that
// every SMPTE edition's namespace matches.
type assetMap struct {
	XMLName xml.Name `xml:"AssetMap"`
	Assets  []struct {
		ID          string `xml:"Id"`
		PackingList string `xml:"PackingList"`
		Chunks      []struct {
			Path string `xml:"Path"`
		} `xml:"ChunkList>Chunk"`
	} `xml:"AssetList>Asset"`
}

type packingList struct {
	XMLName xml.Name `xml:"PackingList"`
	ID      string   `xml:"Id"`
	Assets  []struct {
		ID            string `xml:"Id"`
		Hash          string `xml:"Hash"`
		Size          int64  `xml:"Size"`
		Type          string `xml:"Type"`
		OriginalName  string `xml:"OriginalFileName"`
		HashAlgorithm struct {
			Algorithm string `xml:"Algorithm,attr"`
		} `xml:"HashAlgorithm"`
	} `xml:"AssetList>Asset"`
}

// CheckPackage checks the IMF package in in.Folder: every asset of every packing list is at
// the path ASSETMAP.xml gives, with the packing list's size and hash (SHA-1 in base64, as ST
// 429-8 and ST 2067-2 specify; SHA-256 where the PKL names it), and every track file a CPL
// references is in the package. Paths in ASSETMAP.xml never leave the folder: a path that
// would is a problem, never opened. The error is for a check that could not be made (a read
// error, ctx done); what is wrong with the package is in Problems.
func CheckPackage(ctx context.Context, in PackageInput) (PackageResult, error) {
	var res PackageResult
	base := in.Root
	if base == "" {
		base = in.Folder
	}
	// A package is the folder of an ASSETMAP.xml: the drop folder itself, or the folders below
	// it a vendor dropped whole packages in (an original version and a supplemental).
	var roots []string
	for _, f := range in.Files {
		if path.Base(f) == "ASSETMAP.xml" {
			roots = append(roots, path.Dir(f))
		}
	}
	found := len(roots) > 0
	if !found {
		roots = []string{"."} // where the missing ASSETMAP.xml is reported
	}
	sort.Strings(roots)
	mapped := map[string]bool{}
	for _, root := range roots {
		pk := &pkg{ctx: ctx, in: in, base: base, res: &res, prefix: root}
		if err := pk.check(mapped); err != nil {
			return res, err
		}
	}
	for _, f := range in.Files {
		if found && !mapped[f] {
			res.Warnings = append(res.Warnings, fmt.Sprintf("%s is in the package folder but not in ASSETMAP.xml", f))
		}
	}
	sort.Slice(res.Compositions, func(i, j int) bool { return res.Compositions[i].Title < res.Compositions[j].Title })
	for _, pr := range res.Problems {
		if pr.File != "" {
			res.HoldFile = pr.File
			break
		}
	}
	return res, nil
}

// check checks the package at p.prefix, adding the paths it maps (inside the drop folder) to
// mapped.
func (pk *pkg) check(mapped map[string]bool) error {
	for _, own := range []string{"ASSETMAP.xml", "VOLINDEX.xml"} {
		mapped[pk.name(own)] = true
	}
	data, err := pk.read("ASSETMAP.xml")
	if errors.Is(err, fs.ErrNotExist) {
		pk.problem("", "", "there is no ASSETMAP.xml in the package folder")
		return nil
	}
	if err != nil {
		return err
	}
	var am assetMap
	if msg := decodeXML(data, &am); msg != "" {
		pk.problem("", "ASSETMAP.xml", msg)
		return nil
	}
	paths := map[string]string{} // asset id → path inside the package
	var pkls []string
	for _, a := range am.Assets {
		id := strings.TrimSpace(a.ID)
		if len(a.Chunks) != 1 {
			pk.problem(id, "ASSETMAP.xml", fmt.Sprintf("has %d chunks; hotdrop checks single-volume packages, one file per asset", len(a.Chunks)))
			continue
		}
		p, ok := assetPath(a.Chunks[0].Path)
		if !ok {
			pk.problem(id, "ASSETMAP.xml", fmt.Sprintf("its path %q leaves the package folder or is not a plain relative path; it is never opened", clip(a.Chunks[0].Path)))
			continue
		}
		paths[id] = p
		mapped[pk.name(p)] = true
		if strings.EqualFold(strings.TrimSpace(a.PackingList), "true") {
			pkls = append(pkls, id)
		}
	}
	if len(pkls) == 0 && len(pk.res.Problems) == 0 {
		pk.problem("", "ASSETMAP.xml", "lists no packing list (no asset with <PackingList>true</PackingList>)")
	}
	listed := map[string]bool{} // asset ids some PKL lists
	var cpls []string
	for _, id := range pkls {
		file := paths[id]
		data, err := pk.read(file)
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, safefs.ErrUnsafe) {
			pk.problem(id, file, "the packing list is not in the package ("+reason(err)+")")
			continue
		}
		if err != nil {
			return err
		}
		var pl packingList
		if msg := decodeXML(data, &pl); msg != "" {
			pk.problem(id, file, msg)
			continue
		}
		for _, a := range pl.Assets {
			aid := strings.TrimSpace(a.ID)
			listed[aid] = true
			pk.res.Assets++
			p, ok := paths[aid]
			if !ok {
				pk.problem(aid, file, fmt.Sprintf("the packing list names it (%s) but ASSETMAP.xml gives no path for it", orUnnamed(a.OriginalName)))
				continue
			}
			if err := pk.verify(aid, p, a.Size, a.Hash, a.HashAlgorithm.Algorithm, file); err != nil {
				return err
			}
			if isXMLType(a.Type) || strings.HasSuffix(strings.ToLower(p), ".xml") {
				cpls = append(cpls, p)
			}
		}
	}
	for _, p := range cpls {
		pk.composition(p, listed)
	}
	return nil
}

type pkg struct {
	ctx    context.Context
	in     PackageInput
	base   string
	res    *PackageResult
	prefix string // the package's folder inside the drop folder ("." = the drop folder)
}

// name is a package path as a path inside the drop folder.
func (p *pkg) name(rel string) string { return path.Join(p.prefix, rel) }

// problem records a problem about a file of this package (rel inside it; "" = none).
func (p *pkg) problem(asset, rel, msg string) {
	if rel != "" {
		rel = p.name(rel)
	}
	p.res.Problems = append(p.res.Problems, PackageProblem{Asset: asset, File: rel, Msg: msg})
}

// open opens a file of the package beneath the base folder, never through a link.
func (p *pkg) open(rel string) (io.ReadCloser, error) {
	return safefs.OpenUnder(p.base, filepath.Join(p.in.Folder, filepath.FromSlash(p.name(rel))))
}

func (p *pkg) read(rel string) ([]byte, error) {
	f, err := p.open(rel)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxPackageXML+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxPackageXML {
		return nil, fmt.Errorf("%s is larger than %d MiB, which no package document is", rel, maxPackageXML>>20)
	}
	return data, nil
}

// verify checks one asset's size and hash.
func (p *pkg) verify(id, rel string, size int64, want, algo, pkl string) error {
	f, err := p.open(rel)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, safefs.ErrUnsafe) {
		p.problem(id, rel, fmt.Sprintf("listed in %s, but %s", pkl, reason(err)))
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	var h hash.Hash = sha1.New()
	name := "SHA-1"
	if strings.Contains(strings.ToLower(algo), "sha256") {
		h, name = sha256.New(), "SHA-256"
	}
	n, err := copyCtx(p.ctx, h, f)
	if err != nil {
		return fmt.Errorf("hashing %s: %w", rel, err)
	}
	got := base64.StdEncoding.EncodeToString(h.Sum(nil))
	switch {
	case n != size:
		p.problem(id, rel, fmt.Sprintf("size is %d bytes but %s says %d", n, pkl, size))
	case got != strings.TrimSpace(want):
		p.problem(id, rel, fmt.Sprintf("%s is %s but %s says %s", name, got, pkl, strings.TrimSpace(want)))
	}
	return nil
}

// composition reads an XML asset; a CompositionPlaylist is recorded, and each track file it
// references must be an asset of the package.
func (p *pkg) composition(rel string, listed map[string]bool) {
	data, err := p.read(rel)
	if err != nil {
		return // verify reported it already
	}
	var cpl struct {
		XMLName xml.Name
		ID      string `xml:"Id"`
		Title   string `xml:"ContentTitle"`
	}
	if msg := decodeXML(data, &cpl); msg != "" || cpl.XMLName.Local != "CompositionPlaylist" {
		return // an XML asset that is not a CPL (OPL, sidecar): nothing more to check
	}
	p.res.Compositions = append(p.res.Compositions, Composition{ID: strings.TrimSpace(cpl.ID), Title: strings.TrimSpace(cpl.Title)})
	for _, id := range trackFileIDs(data) {
		if !listed[id] {
			p.problem(id, rel, "the CPL references this track file, but no packing list of the package lists it")
		}
	}
}

// trackFileIDs returns every TrackFileId in a CPL, wherever its sequence sits.
func trackFileIDs(data []byte) []string {
	var out []string
	seen := map[string]bool{}
	in := false
	_ = walkXML(data, func(tok xml.Token, _ int) error {
		switch t := tok.(type) {
		case xml.StartElement:
			in = t.Name.Local == "TrackFileId"
		case xml.CharData:
			if id := strings.TrimSpace(string(t)); in && id != "" && !seen[id] {
				seen[id] = true
				out = append(out, id)
			}
		case xml.EndElement:
			in = false
		}
		return nil
	})
	return out
}

// decodeXML checks the document's shape (bounded depth and tokens, well-formed) and then
// decodes it; "" means it went well, else a sentence.
func decodeXML(data []byte, v any) string {
	if err := walkXML(data, func(xml.Token, int) error { return nil }); err != nil {
		return strings.TrimPrefix(err.Error(), ErrUnreadable.Error()+": ")
	}
	d := xml.NewDecoder(bytes.NewReader(data))
	d.CharsetReader = charsetReader
	if err := d.Decode(v); err != nil {
		return "not the document expected: " + err.Error()
	}
	return ""
}

// assetPath turns an ASSETMAP path into a slash path inside the package folder, or refuses
// it: absolute, a URL, a backslash, a NUL, or any "." or ".." part.
func assetPath(p string) (string, bool) {
	p = strings.TrimSpace(p)
	p = strings.TrimPrefix(p, "file:")
	if p == "" || strings.HasPrefix(p, "/") || strings.ContainsAny(p, "\\\x00:") {
		return "", false
	}
	for _, part := range strings.Split(p, "/") {
		if part == "" || part == "." || part == ".." {
			return "", false
		}
	}
	return path.Clean(p), true
}

func reason(err error) string {
	if errors.Is(err, safefs.ErrUnsafe) {
		return "it " + safefs.Refusal("is a link or not a regular file")
	}
	return "it is not there"
}

func orUnnamed(s string) string {
	if s = strings.TrimSpace(s); s != "" {
		return s
	}
	return "no original file name"
}

func isXMLType(t string) bool {
	t = strings.ToLower(t)
	return strings.Contains(t, "xml")
}

// copyCtx copies src into dst until EOF, stopping when ctx is done.
func copyCtx(ctx context.Context, dst io.Writer, src io.Reader) (int64, error) {
	buf := make([]byte, 1<<20)
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		m, err := src.Read(buf)
		dst.Write(buf[:m])
		n += int64(m)
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}
