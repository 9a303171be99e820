package httpapi

func (s *Server) eventRoutes() {}
