package bounded

// JSON checks a JSON document against lim: depth counts open objects and arrays, keys counts
// object members. encoding/json stops at depth 10,000 by itself; this stops far sooner, and
// bounds size and members too.
func JSON(data []byte, lim Limits) error {
	if err := checkSize(data, lim); err != nil {
		return err
	}
	depth, keys := 0, 0
	for i := 0; i < len(data); i++ {
		switch data[i] {
		case '"':
			for i++; i < len(data) && data[i] != '"'; i++ {
				if data[i] == '\\' {
					i++
				}
			}
		case '[', '{':
			depth++
			if lim.MaxDepth > 0 && depth > lim.MaxDepth {
				return tooDeep(data, i, lim, jsonNesting)
			}
		case ']', '}':
			depth = max(depth-1, 0)
		case ':':
			keys++
			if lim.MaxKeys > 0 && keys > lim.MaxKeys {
				return tooManyKeys(data, i, lim, jsonKeys)
			}
		}
	}
	return nil
}
