package httpapi

func (s *Server) imageRoutes() {}
