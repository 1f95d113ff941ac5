package middleware

// Purpose is what one of a stage's settings or lists is for, by which an
// admin protocol finds it without knowing stage types or names: PCTP's
// CONFIG IO= changes the setting declared for PurposeIOSize in whichever
// stage declares it, and RULES lists the list declared for PurposePolicy.
type Purpose string

// The purposes PCTP looks for.
const (
	// PurposeIOSize is a Tunable setting holding the relay buffer size of
	// new connections, in bytes (PCTP's CONFIG IO=).
	PurposeIOSize Purpose = "io-size"
	// PurposeRules is an Editable list of rules, tried in order, that
	// PCTP's RULES and RULE list and edit when the stage is named
	// (RULES <stage>).
	PurposeRules Purpose = "rules"
	// PurposePolicy is the destination policy's rules list: the list
	// RULES and RULE edit when no stage is named. A stage that declares
	// it declares the same key for PurposeRules.
	PurposePolicy Purpose = "policy"
)

// Purposeful is implemented by a stage that declares which of its settings
// (Tunable) or lists (Editable) serve a purpose.
type Purposeful interface {
	// Purpose returns the key, in the stage's YAML entry, of the setting
	// or list that serves p; ok is false when none does.
	Purpose(p Purpose) (key string, ok bool)
}
