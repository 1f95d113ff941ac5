package iobuf

import "fmt"

// ErrSizeRange is returned, wrapped with middleware.ErrBadValue and naming
// the key and the value, for a buffer size outside MinSize..MaxSize.
var ErrSizeRange = fmt.Errorf("iobuf: size must be %d..%d bytes", MinSize, MaxSize)
