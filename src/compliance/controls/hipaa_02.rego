# HIPAA-02: transmission security.
package prescale.controls.hipaa_02

metadata := {
	"id": "HIPAA-02",
	"framework": "HIPAA",
	"severity": "high",
	"title": "No plain-text transmission",
	"checks": "The API is served over TLS (no insecureHttp), and when health data is seen, Prometheus is read over https (45 CFR 164.312(e)(1) transmission security).",
	"fix": "Set insecureHttp to false; point prometheus.url at an https endpoint (with prometheus.caFile).",
}

findings contains f if {
	not input.serve.tls
	f := {
		"object": "insecureHttp",
		"message": "the API is served over plain HTTP",
		"remedy": {"set": "insecureHttp", "value": false},
	}
}

findings contains f if {
	some s in input.sightings
	s.kind == "health"
	input.serve.prometheusScheme == "http"
	f := {"object": "prometheus.url", "message": "series with health data are read from Prometheus over plain HTTP"}
}
