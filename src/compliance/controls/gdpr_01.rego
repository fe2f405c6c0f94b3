# GDPR-01: personal data in metric labels is dropped or hashed before storage.
package prescale.controls.gdpr_01

metadata := {
	"id": "GDPR-01",
	"framework": "GDPR",
	"severity": "high",
	"title": "Personal data in metric labels is dropped or hashed before storage",
	"checks": "Every label key where the classifier saw e-mail addresses, IP addresses or user ids is listed in compliance.labels.drop or compliance.labels.hash (Art. 5(1)(c) data minimisation, Art. 32 pseudonymisation).",
	"fix": "Hash the label (compliance.labels.hash) and do the same in Prometheus' metric_relabel_configs (action: hashmod, or labeldrop).",
}

personal := {"email", "ip-address", "user-id"}

handled(label) if label in input.settings.labels.drop

handled(label) if label in input.settings.labels.hash

findings contains f if {
	some s in input.sightings
	s.kind in personal
	not handled(s.label)
	f := {
		"object": sprintf("label %s of %s", [s.label, s.metric]),
		"message": sprintf("%s data (seen in %d series) is kept as read", [s.kind, s.series]),
		"remedy": {"add": "compliance.labels.hash", "value": s.label},
	}
}
