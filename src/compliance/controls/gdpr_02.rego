# GDPR-02: series with personal or health data stay in their residency zone.
package prescale.controls.gdpr_02

metadata := {
	"id": "GDPR-02",
	"framework": "GDPR",
	"severity": "high",
	"title": "Series with personal or health data are processed in their residency zone",
	"checks": "When the classifier saw personal, health or payment data, compliance.zone (where prescale runs) and compliance.dataZone (where the series come from) are both declared and equal (Chapter V, transfers).",
	"fix": "Run prescale in the zone its Prometheus is in (one adapter per zone: prescale deploy render --clusters), and declare both zones.",
}

sensitive if {
	some s in input.sightings
}

findings contains f if {
	sensitive
	input.settings.zone == null
	f := {"object": "compliance.zone", "message": "personal data is processed but the zone prescale runs in is not declared"}
}

findings contains f if {
	sensitive
	input.settings.dataZone == null
	f := {"object": "compliance.dataZone", "message": "personal data is processed but the zone its series come from is not declared"}
}

findings contains f if {
	sensitive
	input.settings.zone != null
	input.settings.dataZone != null
	input.settings.zone != input.settings.dataZone
	f := {
		"object": "compliance.zone",
		"message": sprintf("series with personal data from zone %s are processed in zone %s", [input.settings.dataZone, input.settings.zone]),
	}
}
