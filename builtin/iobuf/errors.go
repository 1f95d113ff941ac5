package iobuf

import "errors"

// ErrSizeTooLarge is returned, wrapped with middleware.ErrBadValue and
// naming the key, for a buffer size above MaxSize.
var ErrSizeTooLarge = errors.New("iobuf: size is above the maximum of 16MiB")
