package plugin

// Environment given to a plugin process.
const (
	EnvPort       = "HMS_PLUGIN_PORT"
	EnvID         = "HMS_PLUGIN_ID"
	EnvVersion    = "HMS_PLUGIN_VERSION"
	EnvGeneration = "HMS_PLUGIN_GENERATION"
)

// EnvActivation marks the processes of one activation: a unique marker, appended after a
// comma to one inherited from an enclosing manager (contain.go).
const EnvActivation = "HMS_PLUGIN_ACTIVATION"
