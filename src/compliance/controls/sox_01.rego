# SOX-01: the audit log is present and its hash chain verifies.
package prescale.controls.sox_01

metadata := {
	"id": "SOX-01",
	"framework": "SOX",
	"severity": "critical",
	"title": "The audit log is present and unaltered",
	"checks": "The audit log exists and its SHA-256 chain verifies: no record edited, deleted, reordered or inserted (Section 404 internal controls; PCAOB AS 2201 on IT general controls).",
	"fix": "Turn the audit log on (audit.enabled, on a persistent volume); when its chain breaks, prescale audit verify names the first bad record: restore the log from a backup, and keep the last verified head hash elsewhere.",
}

findings contains f if {
	input.audit.enabled
	not input.audit.present
	f := {"object": "audit log", "message": sprintf("no audit log to verify: %s", [input.audit.problem])}
}

findings contains f if {
	input.audit.present
	not input.audit.verified
	f := {"object": sprintf("audit log %s", [input.audit.file]), "message": sprintf("the hash chain does not verify: %s", [input.audit.problem])}
}

findings contains f if {
	not input.audit.enabled
	f := {"object": "audit log", "message": "the audit log is off: there is nothing to verify"}
}
