package httpapi

func (s *Server) compatRoutes() {}
