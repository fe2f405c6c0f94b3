# PCI-01: card numbers never stay in metric labels.
package prescale.controls.pci_01

metadata := {
	"id": "PCI-01",
	"framework": "PCI",
	"severity": "critical",
	"title": "Card numbers in metric labels are dropped before storage",
	"checks": "Every label key where the classifier saw primary account numbers (13 to 19 digits passing the Luhn check) is listed in compliance.labels.drop (PCI DSS 4.0 requirement 3.4: PAN unreadable wherever stored).",
	"fix": "Drop the label (compliance.labels.drop) and in Prometheus' metric_relabel_configs (action: labeldrop); find the exporter that emits it.",
}

findings contains f if {
	some s in input.sightings
	s.kind == "card-number"
	not s.label in input.settings.labels.drop
	f := {
		"object": sprintf("label %s of %s", [s.label, s.metric]),
		"message": sprintf("card numbers (seen in %d series) are kept", [s.series]),
		"remedy": {"add": "compliance.labels.drop", "value": s.label},
	}
}
