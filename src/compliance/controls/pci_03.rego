# PCI-03: strong cryptography on every connection in production.
package prescale.controls.pci_03

metadata := {
	"id": "PCI-03",
	"framework": "PCI",
	"severity": "high",
	"title": "Trusted TLS on every connection in production",
	"checks": "In production: no plain-HTTP listener, a certificate from a file (not self-signed at start), and Prometheus read over https (PCI DSS 4.0 requirement 4.2.1).",
	"fix": "Set insecureHttp to false, mount a certificate from the cluster's CA (tls.certFile, tls.keyFile), and read Prometheus over https.",
}

production if input.settings.environment == "production"

findings contains f if {
	production
	not input.serve.tls
	f := {
		"object": "insecureHttp",
		"message": "a plain-HTTP listener in production",
		"remedy": {"set": "insecureHttp", "value": false},
	}
}

findings contains f if {
	production
	input.serve.certificate == "self-signed"
	f := {"object": "tls", "message": "the certificate is self-signed at start: clients cannot tell it from an impostor's"}
}

findings contains f if {
	production
	input.serve.prometheusScheme == "http"
	f := {"object": "prometheus.url", "message": "Prometheus is read over plain HTTP in production"}
}
