namespace fetchd {}
