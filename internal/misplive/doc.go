// Package misplive is the relay's integration suite against a real MISP: it seeds a MISP it
// may write to through MISP's own API, runs the relay binary (relay serve) in front of it,
// and checks the CTIM answers, the links into MISP, what the relay reports back to MISP, the
// faults a real MISP produces, and that the fake MISP of the unit tests (misptest) answers
// the relay's requests as the real one does. It also prints what MISP costs per request.
//
// Its tests are behind the build tag misplive and need MISP_TEST_URL and MISP_TEST_KEY (a
// site admin's key): `make test-misp`. Without them the suite says so in one line and stops
// (with CI=true, that is a failure). See the README, "Testing against a real MISP".
package misplive
