# SOX-02: audit records are retained for seven years.
package prescale.controls.sox_02

metadata := {
	"id": "SOX-02",
	"framework": "SOX",
	"severity": "high",
	"title": "Audit records are kept for seven years",
	"checks": "compliance.auditRetentionDays is at least 2555 days (seven years, SEC Rule 2-06 of Regulation S-X under Section 802).",
	"fix": "Keep rotated audit files (audit.jsonl.<seq>) for 2555 days and declare it in compliance.auditRetentionDays.",
}

required := 2555

findings contains f if {
	input.settings.auditRetentionDays == null
	f := {
		"object": "compliance.auditRetentionDays",
		"message": "how long audit files are kept is not declared",
		"remedy": {"set": "compliance.auditRetentionDays", "value": required},
	}
}

findings contains f if {
	days := input.settings.auditRetentionDays
	days != null
	days < required
	f := {
		"object": "compliance.auditRetentionDays",
		"message": sprintf("audit files are kept %v days, fewer than the %v required", [days, required]),
		"remedy": {"set": "compliance.auditRetentionDays", "value": required},
	}
}
