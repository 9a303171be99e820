package httpapi

func (s *Server) taskRoutes() {}
