package httpapi

func (s *Server) opsRoutes() {}
