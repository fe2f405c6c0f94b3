# SOX-03: the configuration's change record names an author, a different approver and a ticket.
package prescale.controls.sox_03

metadata := {
	"id": "SOX-03",
	"framework": "SOX",
	"severity": "high",
	"title": "Every configuration change is authored, approved by someone else, and ticketed",
	"checks": "compliance.change names an author, an approver who is not the author, and a ticket (segregation of duties in change management).",
	"fix": "Record the change: compliance.change.author, .approver (another person) and .ticket, filled in by the review that approved it.",
}

change := input.settings.change

findings contains f if {
	change.author == null
	f := {"object": "compliance.change.author", "message": "the change has no author"}
}

findings contains f if {
	change.approver == null
	f := {"object": "compliance.change.approver", "message": "the change has no approver"}
}

findings contains f if {
	change.author != null
	change.approver != null
	lower(change.author) == lower(change.approver)
	f := {"object": "compliance.change.approver", "message": sprintf("%s approved their own change", [change.author])}
}

findings contains f if {
	change.ticket == null
	f := {"object": "compliance.change.ticket", "message": "the change has no ticket"}
}
