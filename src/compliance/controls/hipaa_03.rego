# HIPAA-03: audit controls are on.
package prescale.controls.hipaa_03

metadata := {
	"id": "HIPAA-03",
	"framework": "HIPAA",
	"severity": "high",
	"title": "Every scaling decision and configuration change is recorded",
	"checks": "The hash-chained audit log is on (audit.enabled not false, and a stateDir or audit.file gives it a place) (45 CFR 164.312(b) audit controls).",
	"fix": "Set audit.enabled to true and give the log a place (stateDir or audit.file on a persistent volume).",
}

has_place if input.serve.stateDir != null

has_place if input.config.audit.file

findings contains f if {
	not input.audit.enabled
	has_place
	f := {
		"object": "audit.enabled",
		"message": "the audit log is off",
		"remedy": {"set": "audit.enabled", "value": true},
	}
}

findings contains f if {
	not input.audit.enabled
	not has_place
	f := {"object": "audit", "message": "the audit log is off and has no place to be written (no stateDir, no audit.file)"}
}
