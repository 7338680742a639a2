package service

// TenantsInFlight returns how many tenants have a request in flight: the per-tenant counts
// must drop their entries when a tenant's last request ends, so tests check it returns to 0.
func (s *Service) TenantsInFlight() int { return s.inFlight.tenants() }
