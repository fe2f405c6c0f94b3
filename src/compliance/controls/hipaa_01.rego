# HIPAA-01: health data never stays in metric labels.
package prescale.controls.hipaa_01

metadata := {
	"id": "HIPAA-01",
	"framework": "HIPAA",
	"severity": "critical",
	"title": "Health data in metric labels is dropped before storage",
	"checks": "Every label key where the classifier saw health data (diagnoses, patients) is listed in compliance.labels.drop; hashing is not enough, as a diagnosis label has few values and its hashes are reversed by trying them all (45 CFR 164.514 de-identification).",
	"fix": "Drop the label (compliance.labels.drop) and in Prometheus' metric_relabel_configs (action: labeldrop).",
}

findings contains f if {
	some s in input.sightings
	s.kind == "health"
	not s.label in input.settings.labels.drop
	f := {
		"object": sprintf("label %s of %s", [s.label, s.metric]),
		"message": sprintf("health data (seen in %d series) is kept", [s.series]),
		"remedy": {"add": "compliance.labels.drop", "value": s.label},
	}
}
