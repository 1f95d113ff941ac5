package middleware

import "errors"

// Sentinel errors.
var (
	// ErrSymlink is wrapped by OpenDataFile when the file is a symbolic
	// link: a link planted among the server's files is never written
	// (or read) through.
	ErrSymlink = errors.New("middleware: refusing to open a symbolic link in place of a data file")
	// ErrNotRegular is wrapped by OpenDataFile when the file is not a
	// regular file (a FIFO, a device, a directory).
	ErrNotRegular = errors.New("middleware: not a regular file")
	// ErrBadCredentials is returned by an Authenticator for a wrong user
	// name or password.
	ErrBadCredentials = errors.New("middleware: bad credentials")
	// ErrUnknownRole is returned by ParseRole.
	ErrUnknownRole = errors.New("middleware: unknown role (want admin or basic)")
	// ErrUnknownKey is wrapped by Decode when a configuration key is not
	// known to the stage.
	ErrUnknownKey = errors.New("middleware: unknown key")
	// ErrBadValue is wrapped by Decode and by stages for a value of the
	// wrong type or out of range.
	ErrBadValue = errors.New("middleware: bad value")
	// ErrCredentialLength is returned by CheckUserName and CheckPassword
	// for a name or password outside 1–255 octets.
	ErrCredentialLength = errors.New("middleware: user names and passwords must be 1-255 octets")
	// ErrUserNameText is wrapped by CheckUserName for a name that is not
	// valid UTF-8 or holds a control character.
	ErrUserNameText = errors.New("middleware: user names must be valid UTF-8 without control characters")
	// ErrLastAdmin is returned by CheckRemoval: removing the user would
	// leave no ADMIN, and nobody could administer the server.
	ErrLastAdmin = errors.New("middleware: cannot remove the last admin")
)
