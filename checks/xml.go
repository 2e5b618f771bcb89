package checks

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
)

// errStop ends walkXML early without an error.
var errStop = errors.New("stop")

// walkXML reads a whole XML document token by token, bounded: it refuses a document that is
// not well-formed, nests deeper than maxXMLDepth or holds more than maxXMLTokens tokens, with
// a sentence naming the line. visit sees every token with its depth (a start element at the
// root has depth 1); an error from visit ends the walk and is returned as it is (errStop:
// nil). Namespaces are not resolved: attributes and elements carry their prefixes.
func walkXML(data []byte, visit func(tok xml.Token, depth int) error) error {
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	d.CharsetReader = charsetReader
	depth, tokens, root := 0, 0, false
	for {
		tok, err := d.RawToken()
		if err == io.EOF {
			break
		}
		if err != nil {
			line, _ := d.InputPos()
			return fmt.Errorf("%w: not well-formed XML at line %d: %s", ErrUnreadable, line, trimXMLErr(err))
		}
		if tokens++; tokens > maxXMLTokens {
			return fmt.Errorf("%w: more than %d XML tokens", ErrUnreadable, maxXMLTokens)
		}
		switch tok.(type) {
		case xml.StartElement:
			if depth++; depth > maxXMLDepth {
				line, _ := d.InputPos()
				return fmt.Errorf("%w: elements nested deeper than %d at line %d", ErrUnreadable, maxXMLDepth, line)
			}
			root = true
		}
		if err := visit(tok, depth); err != nil {
			if err == errStop {
				return nil
			}
			return err
		}
		if _, ok := tok.(xml.EndElement); ok {
			depth--
		}
	}
	if !root {
		return fmt.Errorf("%w: no XML element at all", ErrUnreadable)
	}
	if depth != 0 {
		return fmt.Errorf("%w: the XML ends inside an element", ErrUnreadable)
	}
	return nil
}
