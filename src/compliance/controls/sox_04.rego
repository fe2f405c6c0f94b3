# SOX-04: the configuration in effect was recorded with its change record.
package prescale.controls.sox_04

metadata := {
	"id": "SOX-04",
	"framework": "SOX",
	"severity": "medium",
	"title": "The audit log records who changed the configuration in effect",
	"checks": "The newest configuration load or reload in the audit log carries the author, approver (not the author) and ticket of its change (serve copies compliance.change into the record).",
	"fix": "Deploy configurations only with their compliance.change filled in; serve records it on the next load or reload.",
}

changes := input.audit.configChanges

newest := changes[count(changes) - 1]

findings contains f if {
	input.audit.present
	count(changes) == 0
	f := {"object": sprintf("audit log %s", [input.audit.file]), "message": "no configuration load is recorded"}
}

findings contains f if {
	some key in ["author", "approver", "ticket"]
	newest[key] == null
	f := {
		"object": sprintf("audit record %d", [newest.seq]),
		"message": sprintf("the configuration %s recorded at %s has no %s", [newest.action, newest.time, key]),
	}
}

findings contains f if {
	newest.author != null
	newest.author == newest.approver
	f := {
		"object": sprintf("audit record %d", [newest.seq]),
		"message": sprintf("the configuration recorded at %s was approved by its author", [newest.time]),
	}
}
